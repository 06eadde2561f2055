//! Checkpoints of any model kind in the safetensors format, readable from
//! PyTorch (`safetensors.torch.load_file`), candle or burn.
//!
//! A checkpoint is a model kind, the model's own named tensors and string
//! metadata ([`Parts`]), and what a training run needs to resume exactly:
//! the recipe, the epoch, the random stream, the monitored curves and the
//! training-state tensors (chains, momentum, running averages).
//!
//! File layout (format `ebmkit`, version 2; every tensor little-endian f32,
//! 1-D or 2-D):
//! - the model's tensors under their own names (an RBM: `W`, `b_v`, `b_h`,
//!   ...), so that a PyTorch user finds them as they are named in the papers;
//! - training-state tensors as `state.<name>`;
//! - metadata: `format`, `version`, `kind`, the model's metadata as
//!   `model.<key>`, `recipe` (TOML text), `epoch` (epochs completed),
//!   `rng_seed` / `rng_stream` / `rng_offset` and `history` (JSON).
//!
//! Every model kind goes through one loading path: [`Checkpoint::load`]
//! parses and checks the file (format, dtypes, dimensions, metadata), and
//! [`Checkpoint::model`] hands the parts to the kind's [`Persist`]
//! implementation, whose `from_checkpoint` is the validation hook (shapes,
//! unit types against the recipe, finite values). Files of the first format
//! (`ebmkit-rbm`, RBMs only, written before model kinds existed) still load
//! (`legacy_rbm.rs`).
//!
//! Files are written atomically: a temporary file in the same folder, fsync,
//! rename, fsync of the folder. Errors name the file and the tensor or key.

mod legacy_rbm;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::rng::RngStream;

pub const FORMAT: &str = "ebmkit";
pub const VERSION: &str = "2";
/// Prefix of training-state tensors and of model metadata keys in a file.
const STATE_PREFIX: &str = "state.";
const MODEL_META_PREFIX: &str = "model.";

/// A tensor as a file holds it: 1-D (`[n]`, kept as a 1 x n matrix) or 2-D.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub mat: HostMat,
    /// 1 or 2.
    pub dims: usize,
}

impl Tensor {
    pub fn matrix(mat: HostMat) -> Tensor {
        Tensor { mat, dims: 2 }
    }
    /// A 1 x n matrix stored as the vector `[n]`.
    pub fn vector(mat: HostMat) -> Tensor {
        Tensor { mat, dims: 1 }
    }
    fn shape(&self) -> Vec<usize> {
        match self.dims {
            1 => vec![self.mat.data.len()],
            _ => vec![self.mat.rows, self.mat.cols],
        }
    }
}

/// A model's own part of a checkpoint: named tensors and metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parts {
    pub tensors: BTreeMap<String, Tensor>,
    pub meta: BTreeMap<String, String>,
}

impl Parts {
    /// The tensor `name`, which must exist with `dims` dimensions and hold
    /// finite values only.
    pub fn tensor(&self, name: &str, dims: usize, origin: &Path) -> Result<&HostMat> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::format(origin, format!("tensor '{name}' is missing")))?;
        if t.dims != dims {
            return Err(Error::format(
                origin,
                format!(
                    "tensor '{name}' has shape {:?}, expected {dims} dimension(s)",
                    t.shape()
                ),
            ));
        }
        // Every kind's hook reads its tensors here, so one check keeps a NaN
        // or infinity of any model out of estimators and samplers, which
        // would turn it into a NaN score or a blank picture and exit 0.
        finite(origin, name, &t.mat, t.dims)?;
        Ok(&t.mat)
    }

    /// The metadata value `key`, which must exist.
    pub fn meta(&self, key: &str, origin: &Path) -> Result<&str> {
        self.meta.get(key).map(String::as_str).ok_or_else(|| {
            Error::format(
                origin,
                format!("metadata key '{MODEL_META_PREFIX}{key}' is missing"),
            )
        })
    }
}

/// An error naming the file, the tensor and the first element of `t` that
/// is NaN or infinite, if any (indices as the file lists the shape).
pub fn finite(origin: &Path, name: &str, m: &HostMat, dims: usize) -> Result<()> {
    let Some(i) = m.data.iter().position(|x| !x.is_finite()) else {
        return Ok(());
    };
    let at = match dims {
        1 => format!("[{i}]"),
        _ => {
            let cols = m.cols.max(1);
            format!("[{}, {}]", i / cols, i % cols)
        }
    };
    Err(Error::format(
        origin,
        format!("tensor '{name}' holds {} at {at}", m.data[i]),
    ))
}

/// A model's validation error `e` as a fault of the file `origin`.
pub fn in_file(origin: &Path, e: Error) -> Error {
    match e {
        Error::Shape { detail, .. } => Error::format(origin, detail),
        Error::Value { msg, .. } => Error::format(origin, msg),
        other => other,
    }
}

/// How a model kind is written to and read from a checkpoint.
pub trait Persist: Sized {
    /// The kind's name in recipes and checkpoints ("rbm", ...).
    const KIND: &'static str;
    fn to_parts(&self) -> Result<Parts>;
    /// Rebuilds the model from a checkpoint of its kind, checking
    /// everything a model of this kind must satisfy; `origin` names the
    /// file in errors.
    fn from_checkpoint(ck: &Checkpoint, origin: &Path) -> Result<Self>;
}

/// ```
/// use ebmkit::prelude::*;
/// use std::path::Path;
/// # fn main() -> ebmkit::Result<()> {
/// let rbm = RbmHost::binary(HostMat::zeros(3, 2), HostMat::zeros(1, 3), HostMat::zeros(1, 2));
/// let bytes = Checkpoint::of_model(&rbm)?.to_bytes()?;
/// let origin = Path::new("in-memory.safetensors");
/// let back = Checkpoint::from_bytes(&bytes, origin)?;
/// assert_eq!(back.kind, "rbm");
/// assert_eq!(back.model::<RbmHost>(origin)?, rbm);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model kind ("rbm", ...).
    pub kind: String,
    pub model: Parts,
    /// The recipe that trained the model (TOML text; empty if none).
    pub recipe: String,
    /// Epochs completed.
    pub epoch: u64,
    /// The training random stream, positioned where training stopped.
    pub rng: RngStream,
    /// Training state tensors by name.
    pub state: BTreeMap<String, HostMat>,
    /// Monitored curves as JSON, or empty.
    pub history: String,
}

fn le_bytes(m: &HostMat) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.data.len() * 4);
    for x in &m.data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

impl Checkpoint {
    /// A checkpoint of a bare model (no training state).
    pub fn of_model<M: Persist>(model: &M) -> Result<Checkpoint> {
        Ok(Checkpoint {
            kind: M::KIND.to_string(),
            model: model.to_parts()?,
            recipe: String::new(),
            epoch: 0,
            rng: RngStream::new(0, 0),
            state: BTreeMap::new(),
            history: String::new(),
        })
    }

    /// The model, through its kind's validation hook.
    pub fn model<M: Persist>(&self, origin: &Path) -> Result<M> {
        if self.kind != M::KIND {
            return Err(Error::format(
                origin,
                format!(
                    "the checkpoint holds a '{}' model, not '{}'",
                    self.kind,
                    M::KIND
                ),
            ));
        }
        M::from_checkpoint(self, origin)
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, t) in &self.model.tensors {
            if name.starts_with(STATE_PREFIX) {
                return Err(Error::value(
                    "checkpoint",
                    format!("model tensor '{name}' may not start with '{STATE_PREFIX}'"),
                ));
            }
            owned.push((name.clone(), t.shape(), le_bytes(&t.mat)));
        }
        for (name, m) in &self.state {
            let shape = vec![m.rows, m.cols];
            owned.push((format!("{STATE_PREFIX}{name}"), shape, le_bytes(m)));
        }
        let views = owned
            .iter()
            .map(|(n, s, b)| {
                safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                    .map(|v| (n.as_str(), v))
                    .map_err(|e| Error::value(format!("tensor {n}"), e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut meta = HashMap::new();
        let mut put = |k: &str, v: String| {
            meta.insert(k.to_string(), v);
        };
        put("format", FORMAT.to_string());
        put("version", VERSION.to_string());
        put("kind", self.kind.clone());
        for (k, v) in &self.model.meta {
            put(&format!("{MODEL_META_PREFIX}{k}"), v.clone());
        }
        put("recipe", self.recipe.clone());
        put("epoch", self.epoch.to_string());
        put("rng_seed", self.rng.seed.to_string());
        put("rng_stream", self.rng.stream.to_string());
        put("rng_offset", self.rng.offset.to_string());
        put("history", self.history.clone());
        safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::value("checkpoint", e.to_string()))
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomic(path.as_ref(), &bytes)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// Parses safetensors bytes; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let fmt = |msg: String| Error::format(path, msg);
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| -> Result<String> {
            meta.get(k)
                .cloned()
                .ok_or_else(|| fmt(format!("metadata key '{k}' is missing")))
        };
        let format = get("format")?;
        let mut tensors = BTreeMap::new();
        for name in st.names() {
            tensors.insert(name.to_string(), read_tensor(&st, name, path)?);
        }
        let (kind, model, state) = match format.as_str() {
            FORMAT => split_current(tensors, &meta),
            legacy_rbm::FORMAT => legacy_rbm::split(tensors, &meta),
            other => {
                return Err(fmt(format!(
                    "metadata format is '{other}', expected '{FORMAT}' (or the older '{}')",
                    legacy_rbm::FORMAT
                )))
            }
        };
        let kind = kind.ok_or_else(|| fmt("metadata key 'kind' is missing".into()))?;
        let parse_u64 = |k: &str| -> Result<u64> {
            let s = get(k)?;
            s.parse::<u64>()
                .map_err(|_| fmt(format!("metadata '{k}' = '{s}' is not an unsigned integer")))
        };
        let seed = parse_u64("rng_seed")?;
        let stream = parse_u64("rng_stream")?;
        let stream = u32::try_from(stream)
            .map_err(|_| fmt(format!("metadata 'rng_stream' = {stream} exceeds 32 bits")))?;
        Ok(Checkpoint {
            kind,
            model,
            recipe: meta.get("recipe").cloned().unwrap_or_default(),
            epoch: parse_u64("epoch")?,
            rng: RngStream {
                seed,
                stream,
                offset: parse_u64("rng_offset")?,
            },
            state,
            history: meta.get("history").cloned().unwrap_or_default(),
        })
    }

    /// A state tensor that must exist with the given shape and finite
    /// values (`path` names the checkpoint in the error).
    pub fn state_tensor(&self, path: &Path, name: &str, shape: (usize, usize)) -> Result<&HostMat> {
        let t = self.state.get(name).ok_or_else(|| {
            Error::format(
                path,
                format!("tensor '{name}' is missing (needed to resume)"),
            )
        })?;
        if t.shape() != shape {
            return Err(Error::format(
                path,
                format!(
                    "tensor '{name}' is {}x{}, expected {}x{}",
                    t.rows, t.cols, shape.0, shape.1
                ),
            ));
        }
        // A NaN chain or momentum would resume silently and surface an
        // epoch later as a false divergence.
        finite(path, &format!("{STATE_PREFIX}{name}"), t, 2)?;
        Ok(t)
    }
}

/// The kind, the model's parts and the state of a current-format file.
fn split_current(
    tensors: BTreeMap<String, Tensor>,
    meta: &HashMap<String, String>,
) -> (Option<String>, Parts, BTreeMap<String, HostMat>) {
    let mut model = Parts::default();
    let mut state = BTreeMap::new();
    for (name, t) in tensors {
        match name.strip_prefix(STATE_PREFIX) {
            Some(s) => {
                state.insert(s.to_string(), t.mat);
            }
            None => {
                model.tensors.insert(name, t);
            }
        }
    }
    for (k, v) in meta {
        if let Some(k) = k.strip_prefix(MODEL_META_PREFIX) {
            model.meta.insert(k.to_string(), v.clone());
        }
    }
    (meta.get("kind").cloned(), model, state)
}

/// One tensor of a file: F32, 1-D or 2-D.
fn read_tensor(st: &SafeTensors<'_>, name: &str, path: &Path) -> Result<Tensor> {
    let fmt = |msg: String| Error::format(path, msg);
    let t = st
        .tensor(name)
        .map_err(|_| fmt(format!("tensor '{name}' is missing")))?;
    if t.dtype() != Dtype::F32 {
        return Err(fmt(format!(
            "tensor '{name}' has dtype {:?}, expected F32",
            t.dtype()
        )));
    }
    let shape = t.shape().to_vec();
    let (rows, cols, dims) = match shape.as_slice() {
        [n] => (1, *n, 1),
        [r, c] => (*r, *c, 2),
        _ => {
            return Err(fmt(format!(
                "tensor '{name}' has shape {shape:?}, expected 1 or 2 dimensions"
            )))
        }
    };
    let data: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mat = HostMat::new(rows, cols, data).map_err(|e| fmt(format!("tensor '{name}': {e}")))?;
    Ok(Tensor { mat, dims })
}

/// Writes `bytes` to `path` so that a reader sees either the old file or the
/// whole new one: temp file in the same folder, fsync, rename, fsync folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::value(
            "checkpoint path",
            format!("{} has no file name", path.display()),
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
