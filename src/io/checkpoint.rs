//! RBM checkpoints in the safetensors format, readable from PyTorch, candle
//! or burn.
//!
//! Tensors (all little-endian f32):
//! - `W` [n_visible, n_hidden], `b_v` [n_visible], `b_h` [n_hidden], and
//!   for Gaussian visible units `log_var_v` [n_visible] (log σ²; absent in
//!   older files, read as unit variance);
//! - the training state needed to resume exactly, as 2-D tensors: the
//!   persistent chains (`chain_v`, `chain_h`, or the stacked tempering
//!   chains `pt_v`, `pt_h`, `pt_phase`), the momentum state (`W_prev`, the
//!   weights before the last update, the bias steps `db_v`, `db_h`, and
//!   `dlog_var_v` for learned variances), fast weights (`fast_W`, `fast_b_v`, `fast_b_h`), the sparsity
//!   and centering running averages (`q_h`, `mu_v`, `lambda_h`).
//!
//! Metadata (string to string): `format` = `ebmkit-rbm`, `version`,
//! `visible` / `hidden` unit types, `recipe` (the TOML text), `epoch`
//! (epochs completed), `rng_seed` / `rng_stream` / `rng_offset` (the
//! training stream) and `history` (the monitored curves as JSON).
//!
//! Files are written atomically: a temporary file in the same folder, fsync,
//! rename, fsync of the folder. Loading checks every tensor's presence, dtype
//! and shape, and names the file and the tensor when one is wrong.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::host::HostMat;
use crate::models::rbm::RbmHost;
use crate::rng::RngStream;
use crate::units::UnitKind;

pub const FORMAT: &str = "ebmkit-rbm";
pub const VERSION: &str = "1";

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub rbm: RbmHost,
    /// The recipe that trained the model (TOML text; empty if none).
    pub recipe: String,
    /// Epochs completed.
    pub epoch: u64,
    /// The training random stream, positioned where training stopped.
    pub rng: RngStream,
    /// Training state tensors by name (see the module docs).
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
    pub fn of_model(rbm: RbmHost) -> Checkpoint {
        Checkpoint {
            rbm,
            recipe: String::new(),
            epoch: 0,
            rng: RngStream::new(0, 0),
            state: BTreeMap::new(),
            history: String::new(),
        }
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.rbm.validate()?;
        let (nv, nh) = self.rbm.w.shape();
        let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
            ("W".into(), vec![nv, nh], le_bytes(&self.rbm.w)),
            ("b_v".into(), vec![nv], le_bytes(&self.rbm.b_v)),
            ("b_h".into(), vec![nh], le_bytes(&self.rbm.b_h)),
        ];
        if let Some(z) = &self.rbm.log_var_v {
            owned.push(("log_var_v".into(), vec![nv], le_bytes(z)));
        }
        for (name, m) in &self.state {
            if MODEL_TENSORS.contains(&name.as_str()) {
                return Err(Error::value(
                    "checkpoint state",
                    format!("'{name}' is reserved"),
                ));
            }
            owned.push((name.clone(), vec![m.rows, m.cols], le_bytes(m)));
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
        put("visible", self.rbm.visible.name().to_string());
        put("hidden", self.rbm.hidden.name().to_string());
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
        if format != FORMAT {
            return Err(fmt(format!(
                "metadata format is '{format}', expected '{FORMAT}'"
            )));
        }
        let parse_u64 = |k: &str| -> Result<u64> {
            let s = get(k)?;
            s.parse::<u64>()
                .map_err(|_| fmt(format!("metadata '{k}' = '{s}' is not an unsigned integer")))
        };
        let visible = UnitKind::parse(&get("visible")?, "visible")
            .map_err(|e| fmt(format!("metadata: {e}")))?;
        let hidden = UnitKind::parse(&get("hidden")?, "hidden")
            .map_err(|e| fmt(format!("metadata: {e}")))?;

        let tensor = |name: &str, dims: Option<usize>| -> Result<HostMat> {
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
            if let Some(d) = dims {
                if shape.len() != d {
                    return Err(fmt(format!(
                        "tensor '{name}' has shape {shape:?}, expected {d} dimension(s)"
                    )));
                }
            }
            let (rows, cols) = match shape.as_slice() {
                [n] => (1, *n),
                [r, c] => (*r, *c),
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
            HostMat::new(rows, cols, data).map_err(|e| fmt(format!("tensor '{name}': {e}")))
        };
        let w = tensor("W", Some(2))?;
        let (nv, nh) = w.shape();
        if nv == 0 || nh == 0 {
            return Err(fmt(format!(
                "tensor 'W' has shape [{nv}, {nh}], both must be > 0"
            )));
        }
        let b_v = tensor("b_v", Some(1))?;
        if b_v.cols != nv {
            return Err(fmt(format!(
                "tensor 'b_v' has shape [{}], expected [{nv}]",
                b_v.cols
            )));
        }
        let b_h = tensor("b_h", Some(1))?;
        if b_h.cols != nh {
            return Err(fmt(format!(
                "tensor 'b_h' has shape [{}], expected [{nh}]",
                b_h.cols
            )));
        }
        // Gaussian visible units without the tensor (older checkpoints): unit variance.
        let log_var_v = if st.names().contains(&"log_var_v") {
            if visible != UnitKind::Gaussian {
                return Err(fmt(format!(
                    "tensor 'log_var_v' is present but the visible units are {visible}"
                )));
            }
            let z = tensor("log_var_v", Some(1))?;
            if z.cols != nv {
                return Err(fmt(format!(
                    "tensor 'log_var_v' has shape [{}], expected [{nv}]",
                    z.cols
                )));
            }
            if let Some(bad) = z.data.iter().find(|x| !x.is_finite()) {
                return Err(fmt(format!("tensor 'log_var_v' holds {bad}")));
            }
            Some(z)
        } else {
            None
        };
        let mut state = BTreeMap::new();
        for name in st.names() {
            if !MODEL_TENSORS.contains(&name) {
                state.insert(name.to_string(), tensor(name, None)?);
            }
        }
        let seed = parse_u64("rng_seed")?;
        let stream = parse_u64("rng_stream")?;
        let stream = u32::try_from(stream)
            .map_err(|_| fmt(format!("metadata 'rng_stream' = {stream} exceeds 32 bits")))?;
        Ok(Checkpoint {
            rbm: RbmHost {
                w,
                b_v,
                b_h,
                visible,
                hidden,
                log_var_v,
            },
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

    /// A state tensor that must exist with the given shape (`path` names the
    /// checkpoint in the error).
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
        Ok(t)
    }
}

/// The model's own tensors; state tensors may not use these names.
const MODEL_TENSORS: [&str; 4] = ["W", "b_v", "b_h", "log_var_v"];

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
