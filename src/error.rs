//! One error type for the whole crate (and for the binary). Every variant
//! carries what a user needs to find the fault: the file, the shape, the
//! value or the limit.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that was read but whose contents are not what its format promises.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// Operands whose shapes do not fit the operation.
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },
    /// A request beyond what the device (or the format) can hold.
    #[error("{what}: requested {requested}, limit is {limit}")]
    Limit {
        what: String,
        requested: u64,
        limit: u64,
    },
    /// A value that is out of its allowed range (learning rate, probability, ...).
    #[error("invalid value for {name}: {msg}")]
    Value { name: String, msg: String },
    /// Training stopped: a parameter became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}: parameter {param} is NaN or infinite{}",
        match last_good {
            Some(p) => format!(" (last good checkpoint kept: {})", p.display()),
            None => String::new(),
        }
    )]
    Diverged {
        epoch: u64,
        param: String,
        last_good: Option<PathBuf>,
    },
    #[error("GPU: {0}")]
    Gpu(String),
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }
    pub fn value(name: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Value {
            name: name.into(),
            msg: msg.into(),
        }
    }
}
