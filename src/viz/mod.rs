//! Pictures of models and runs.
//!
//! - [`grid`]: PNG grids of images (data, samples, receptive fields
//!   normalised per filter).
//! - [`curves`]: line plots of plain series as PNG (training curves; the
//!   caller writes a CSV of the numbers beside them).

pub mod curves;
pub mod grid;

pub use curves::{save_plots, Color, Line, Plot};
pub use grid::{receptive_fields, save_grid, zoom_for, Norm};
