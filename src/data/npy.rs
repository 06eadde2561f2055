//! numpy `.npy` arrays (format versions 1.0, 2.0 and 3.0).
//!
//! Read: dtypes float32, float64 and uint8 (either byte order for floats),
//! C or Fortran order, any number of dimensions, converted to f32 (uint8
//! values are kept as 0..=255, not rescaled). Write: float32, C order.

use std::path::Path;

use super::{read_file, write_file};
use crate::error::{Error, Result};
use crate::host::HostMat;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// An n-dimensional array in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl NpyArray {
    /// As a matrix: 2-D arrays as they are, otherwise `shape[0]` rows of the
    /// remaining dimensions flattened (1-D gives a column, 0-D a 1x1).
    pub fn into_mat(self) -> HostMat {
        let (rows, cols) = match self.shape.as_slice() {
            [] => (1, 1),
            [r, rest @ ..] => (*r, rest.iter().product()),
        };
        HostMat {
            rows,
            cols,
            data: self.data,
        }
    }

    /// Reads a `.npy` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&read_file(path)?, path)
    }

    /// Parses `.npy` contents; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        parse(bytes, path)
    }
}

/// Reads a `.npy` file into a matrix (see [`NpyArray::into_mat`]).
pub fn read_npy(path: impl AsRef<Path>) -> Result<HostMat> {
    Ok(NpyArray::read(path)?.into_mat())
}

/// Writes a matrix as a 2-D float32 `.npy` file.
pub fn write_npy(path: impl AsRef<Path>, m: &HostMat) -> Result<()> {
    write_file(path.as_ref(), &encode_f32(&[m.rows, m.cols], &m.data)?)
}

/// Writes any-shape float32 data as `.npy`.
pub fn write_npy_shape(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<()> {
    write_file(path.as_ref(), &encode_f32(shape, data)?)
}

/// The bytes of a version-1.0 float32 `.npy` file, header padded to 64 bytes
/// as numpy does (so the data are aligned for memory mapping).
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(data.len()) {
        return Err(Error::shape(
            "npy::encode_f32",
            format!("shape {shape:?} does not hold {} values", data.len()),
        ));
    }
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Version 1.0 stores the header length in 16 bits.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    if total - 10 > u16::MAX as usize {
        return Err(Error::value(
            "npy shape",
            format!("{} dimensions make the header too long", shape.len()),
        ));
    }
    header.extend(std::iter::repeat_n(' ', total - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(total + 4 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F4 { big: bool },
    F8 { big: bool },
    U1,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F4 { .. } => 4,
            Dtype::F8 { .. } => 8,
            Dtype::U1 => 1,
        }
    }
    fn parse(s: &str) -> Option<Dtype> {
        let (big, code) = if let Some(c) = s.strip_prefix('>') {
            (true, c)
        } else if let Some(c) = s.strip_prefix(['<', '=', '|']) {
            (false, c)
        } else {
            (false, s)
        };
        match code {
            "f4" => Some(Dtype::F4 { big }),
            "f8" => Some(Dtype::F8 { big }),
            "u1" => Some(Dtype::U1),
            _ => None,
        }
    }
}

/// The values of the header dictionary the reader needs.
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    Tuple(Vec<u64>),
}

/// A parser for the Python dict literal of the header, just wide enough for
/// what numpy writes (and hand-written variants of it).
struct Lit<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lit<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == q)?;
        self.i = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec()).ok()
    }
    fn int(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let v = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()?;
        // Python 2 wrote long integers with an `L` suffix.
        if self.s.get(self.i) == Some(&b'L') {
            self.i += 1;
        }
        Some(v)
    }
    fn value(&mut self) -> Option<Value> {
        self.ws();
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            return Some(Value::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.i += 5;
            return Some(Value::Bool(false));
        }
        match rest.first()? {
            b'\'' | b'"' => self.string().map(Value::Str),
            b'(' => {
                self.i += 1;
                let mut v = Vec::new();
                loop {
                    if self.eat(b')') {
                        return Some(Value::Tuple(v));
                    }
                    v.push(self.int()?);
                    if !self.eat(b',') {
                        return self.eat(b')').then_some(Value::Tuple(v));
                    }
                }
            }
            c if c.is_ascii_digit() => self.int().map(Value::Int),
            _ => None,
        }
    }
    fn dict(&mut self) -> Option<Vec<(String, Value)>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                break;
            }
            let k = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            out.push((k, self.value()?));
            if !self.eat(b',') {
                if !self.eat(b'}') {
                    return None;
                }
                break;
            }
        }
        self.ws();
        (self.i == self.s.len()).then_some(out)
    }
}

// A parser: one check per field of the format, in file order, reads best in one piece.
#[allow(clippy::too_many_lines)]
fn parse(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let fmt = |msg: String| Error::format(path, msg);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(fmt(
            "not a .npy file: it does not start with the magic \\x93NUMPY".into(),
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(fmt("truncated .npy header".into()));
            }
            let l = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (l as usize, 12)
        }
        _ => {
            return Err(fmt(format!(
                "unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are read)"
            )))
        }
    };
    let Some(hend) = hstart.checked_add(hlen).filter(|&e| e <= bytes.len()) else {
        return Err(fmt(format!(
            "truncated: the header claims {hlen} bytes, the file has {}",
            bytes.len()
        )));
    };
    let header = &bytes[hstart..hend];
    let entries = Lit { s: header, i: 0 }.dict().ok_or_else(|| {
        fmt(format!(
            "cannot parse the header dictionary {:?}",
            String::from_utf8_lossy(header).trim_end()
        ))
    })?;
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Value::Str(s)) => s.clone(),
        _ => return Err(fmt("header lacks a string 'descr'".into())),
    };
    let dtype = Dtype::parse(&descr).ok_or_else(|| {
        fmt(format!(
            "unsupported dtype '{descr}' (float32, float64 and uint8 are read)"
        ))
    })?;
    let fortran = match get("fortran_order") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(fmt("header lacks a boolean 'fortran_order'".into())),
    };
    let shape: Vec<usize> = match get("shape") {
        Some(Value::Tuple(t)) => t.iter().map(|&d| d as usize).collect(),
        Some(Value::Int(d)) => vec![*d as usize],
        _ => return Err(fmt("header lacks a tuple 'shape'".into())),
    };
    let body = &bytes[hend..];
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size()).map(|b| (n, b)));
    let Some((count, nbytes)) = count else {
        return Err(fmt(format!("shape {shape:?} overflows")));
    };
    if body.len() != nbytes {
        let what = if body.len() < nbytes {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(fmt(format!(
            "{what}: shape {shape:?} of '{descr}' needs {nbytes} data bytes, found {}",
            body.len()
        )));
    }
    let mut data: Vec<f32> = match dtype {
        Dtype::U1 => body.iter().map(|&b| b as f32).collect(),
        Dtype::F4 { big } => body
            .chunks_exact(4)
            .map(|c| {
                let a = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(a)
                } else {
                    f32::from_le_bytes(a)
                }
            })
            .collect(),
        Dtype::F8 { big } => body
            .chunks_exact(8)
            .map(|c| {
                let a = c.try_into().expect("chunks of 8");
                (if big {
                    f64::from_be_bytes(a)
                } else {
                    f64::from_le_bytes(a)
                }) as f32
            })
            .collect(),
    };
    debug_assert_eq!(data.len(), count);
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&shape, &data);
    }
    Ok(NpyArray { shape, data })
}

/// Reorders column-major (first index fastest) data into row-major.
fn fortran_to_c(shape: &[usize], src: &[f32]) -> Vec<f32> {
    let nd = shape.len();
    // Fortran strides: stride[k] = product of shape[..k].
    let mut stride = vec![1usize; nd];
    for k in 1..nd {
        stride[k] = stride[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(src.len());
    let mut idx = vec![0usize; nd];
    let mut off = 0usize;
    for _ in 0..src.len() {
        out.push(src[off]);
        // Advance the C-order odometer (last index fastest), keeping `off`.
        for k in (0..nd).rev() {
            idx[k] += 1;
            off += stride[k];
            if idx[k] < shape[k] {
                break;
            }
            off -= stride[k] * shape[k];
            idx[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_reorder_3d() {
        // C-order values v[i,j,k] = 100i + 10j + k for shape (2, 3, 4).
        let shape = [2, 3, 4];
        let mut f = vec![0.0; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    f[i + 2 * j + 6 * k] = (100 * i + 10 * j + k) as f32;
                }
            }
        }
        let c = fortran_to_c(&shape, &f);
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    assert_eq!(c[12 * i + 4 * j + k], (100 * i + 10 * j + k) as f32);
                }
            }
        }
    }

    #[test]
    fn header_is_aligned_and_parses() {
        for shape in [vec![], vec![5], vec![2, 3], vec![1, 2, 3, 4]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b = encode_f32(&shape, &data).unwrap();
            assert_eq!((b.len() - 4 * n) % 64, 0);
            let a = NpyArray::from_bytes(&b, Path::new("mem.npy")).unwrap();
            assert_eq!(a.shape, shape);
            assert_eq!(a.data, data);
        }
    }

    #[test]
    fn every_prefix_is_an_error_not_a_panic() {
        let b = encode_f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        for k in 0..b.len() {
            assert!(matches!(
                NpyArray::from_bytes(&b[..k], Path::new("x.npy")),
                Err(Error::Format { .. })
            ));
        }
    }
}
