//! Pictures of models and runs.
//!
//! - [`grid`]: PNG grids of images (data, samples, receptive fields
//!   normalised per filter).
//! - [`curves`]: training curves as PNG line plots (plotters, no text: the
//!   file name says what is plotted, and a CSV beside it has the numbers).

pub mod curves;
pub mod grid;

pub use curves::save_curves;
pub use grid::{save_grid, Norm};
