//! Pictures of models and runs.
//!
//! - [`grid`]: PNG grids of images (data, samples, receptive fields
//!   normalised per filter).
//! - [`scatter`]: 2-D points coloured by class (a deep auto-encoder's
//!   codes by digit).
//! - [`curves`]: line plots of plain series as PNG (training curves; the
//!   caller writes a CSV of the numbers beside them).

pub mod curves;
pub mod grid;
pub mod scatter;

pub use curves::{save_plots, save_xy_plot, Color, Line, Plot};
pub use grid::{receptive_fields, save_grid, zoom_for, Norm};
pub use scatter::save_scatter;
