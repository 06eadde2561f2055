//! The IDX format of LeCun's MNIST distribution: a 4-byte magic
//! `00 00 <type> <ndims>`, `ndims` big-endian u32 dimensions, then the values
//! in C order. Only the unsigned-byte type (0x08) is supported, which is what
//! MNIST and its relatives (Fashion-MNIST, EMNIST, KMNIST) use.
//!
//! Files may be raw or gzip-compressed; compression is detected from the
//! gzip magic bytes, so a renamed file still loads.

use std::io::{self, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::{read_file, write_file};
use crate::error::{Error, Result};
use crate::host::HostMat;

/// The IDX type code for unsigned bytes.
pub const TYPE_UBYTE: u8 = 0x08;
/// Magic of an MNIST image file: unsigned bytes, 3 dimensions.
pub const MAGIC_IMAGES: u32 = 0x0803;
/// Magic of an MNIST label file: unsigned bytes, 1 dimension.
pub const MAGIC_LABELS: u32 = 0x0801;
/// Largest payload accepted (16 GiB): a corrupt header must not make the
/// reader try to allocate or decompress without bound.
pub const MAX_IDX_BYTES: u64 = 1 << 34;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Trailing decompressed bytes counted for the error message before giving up
/// (a gzip bomb appended to a file must not stall the reader).
const TRAILING_COUNT_CAP: u64 = 1 << 30;

/// An unsigned-byte IDX array: its dimensions and its values in C order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Whether `bytes` start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

fn shape_str(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn kind_word(ndims: usize) -> &'static str {
    match ndims {
        1 => "labels",
        3 => "images",
        _ => "values",
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl IdxArray {
    /// Checks that the dimensions fit the format and match the data.
    pub fn new(dims: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        if dims.is_empty() || dims.len() > 255 {
            return Err(Error::value(
                "IDX dimensions",
                format!("{} dimensions; the format holds 1 to 255", dims.len()),
            ));
        }
        if let Some(d) = dims.iter().find(|&&d| d > u32::MAX as usize) {
            return Err(Error::value(
                "IDX dimensions",
                format!("dimension {d} does not fit in 32 bits"),
            ));
        }
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(Error::shape(
                "IdxArray::new",
                format!(
                    "dimensions {} need {} values, got {}",
                    shape_str(&dims),
                    n.map_or("too many".into(), |n| n.to_string()),
                    data.len()
                ),
            ));
        }
        Ok(IdxArray { dims, data })
    }

    /// The 32-bit magic number this array is written with.
    pub fn magic(&self) -> u32 {
        ((TYPE_UBYTE as u32) << 8) | self.dims.len() as u32
    }

    /// Number of items (the leading dimension).
    pub fn len(&self) -> usize {
        self.dims[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per item: the product of the trailing dimensions.
    pub fn item_len(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// The first `n` items (a subset that keeps the trailing dimensions).
    pub fn head(&self, n: usize) -> Result<IdxArray> {
        if n > self.len() {
            return Err(Error::shape(
                "IdxArray::head",
                format!("asked for {n} items of {}", self.len()),
            ));
        }
        let mut dims = self.dims.clone();
        dims[0] = n;
        let data = self.data[..n * self.item_len()].to_vec();
        Ok(IdxArray { dims, data })
    }

    /// One row per item, bytes scaled from 0..=255 to [0, 1].
    pub fn to_unit_mat(&self) -> HostMat {
        HostMat {
            rows: self.len(),
            cols: self.item_len(),
            data: self.data.iter().map(|&b| b as f32 / 255.0).collect(),
        }
    }

    /// Reads any unsigned-byte IDX file, raw or gzip-compressed.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&read_file(path)?, path)
    }

    /// Parses the contents of an IDX file; `path` only names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        parse_bytes(bytes, path, None)
    }

    /// The file contents, uncompressed.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 4 * self.dims.len() + self.data.len());
        out.extend_from_slice(&self.magic().to_be_bytes());
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }

    /// Writes the array, gzip-compressed if `gzip` (with a fixed header, so
    /// the same array always gives the same bytes).
    pub fn write(&self, path: impl AsRef<Path>, gzip: bool) -> Result<()> {
        let path = path.as_ref();
        let raw = self.encode();
        if !gzip {
            return write_file(path, &raw);
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let bytes = enc
            .write_all(&raw)
            .and_then(|_| enc.finish())
            .map_err(|e| Error::io(path, e))?;
        write_file(path, &bytes)
    }
}

/// Reads an MNIST-style image file (magic 2051: unsigned bytes, n x rows x cols).
pub fn read_images(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    parse_bytes(&read_file(path)?, path, Some(MAGIC_IMAGES))
}

/// Reads an MNIST-style label file (magic 2049: unsigned bytes, n).
pub fn read_labels(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    parse_bytes(&read_file(path)?, path, Some(MAGIC_LABELS))
}

fn parse_bytes(bytes: &[u8], path: &Path, expect: Option<u32>) -> Result<IdxArray> {
    if is_gzip(bytes) {
        parse(MultiGzDecoder::new(bytes), path, true, expect)
    } else {
        parse(bytes, path, false, expect)
    }
}

// A parser: one check per field of the format, in file order, reads best in one piece.
#[allow(clippy::too_many_lines)]
fn parse<R: Read>(mut r: R, path: &Path, gz: bool, expect: Option<u32>) -> Result<IdxArray> {
    let fmt = |msg: String| Error::format(path, msg);
    // Inside a gzip stream every read error means corrupt compressed data.
    let read_err = |e: io::Error| {
        if gz {
            Error::format(path, format!("corrupt or truncated gzip data: {e}"))
        } else {
            Error::io(path, e)
        }
    };
    let unit = if gz { "decompressed bytes" } else { "bytes" };

    let mut head = [0u8; 4];
    let got = fill(&mut r, &mut head).map_err(read_err)?;
    if got < 4 {
        return Err(fmt(format!(
            "{got} {unit}: too short for the 4-byte IDX magic"
        )));
    }
    let magic = u32::from_be_bytes(head);
    if let Some(want) = expect {
        if magic != want {
            let what = if want == MAGIC_IMAGES {
                "unsigned-byte images, 3 dimensions"
            } else {
                "unsigned-byte labels, 1 dimension"
            };
            return Err(fmt(format!(
                "bad IDX magic {magic} (0x{magic:08x}); expected {want} ({what})"
            )));
        }
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(fmt(format!(
            "bad IDX magic 0x{magic:08x}: an IDX file starts with two zero bytes"
        )));
    }
    if head[2] != TYPE_UBYTE {
        return Err(fmt(format!(
            "unsupported IDX type code 0x{:02x}; only 0x08 (unsigned byte) is supported",
            head[2]
        )));
    }
    let nd = head[3] as usize;
    if nd == 0 {
        return Err(fmt("IDX magic declares zero dimensions".into()));
    }
    let header_len = 4 + 4 * nd;
    let mut dim_bytes = vec![0u8; 4 * nd];
    let got = fill(&mut r, &mut dim_bytes).map_err(read_err)?;
    if got < dim_bytes.len() {
        return Err(fmt(format!(
            "truncated header: {nd} dimensions need {header_len} {unit}, found {}",
            4 + got
        )));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let shape = shape_str(&dims);
    let kind = kind_word(nd);
    let payload = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&p| p <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            fmt(format!(
                "dimensions {shape} give more than {MAX_IDX_BYTES} bytes; the header is corrupt"
            ))
        })?;
    let expected = header_len as u64 + payload;

    // Capacity is capped because, inside gzip, the header's promise is not
    // yet backed by any data.
    let mut data = Vec::with_capacity(payload.min(1 << 26) as usize);
    (&mut r)
        .take(payload + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    let found = header_len as u64 + data.len() as u64;
    if (data.len() as u64) < payload {
        return Err(fmt(format!(
            "truncated: expected {expected} {unit} for {shape} {kind}, found {found}"
        )));
    }
    if data.len() as u64 > payload {
        let rest =
            io::copy(&mut (&mut r).take(TRAILING_COUNT_CAP), &mut io::sink()).map_err(read_err)?;
        let more = if rest == TRAILING_COUNT_CAP {
            "at least "
        } else {
            ""
        };
        return Err(fmt(format!(
            "trailing bytes: expected {expected} {unit} for {shape} {kind}, found {more}{}",
            found + rest
        )));
    }
    data.truncate(payload as usize);
    Ok(IdxArray { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("mem.idx")
    }

    #[test]
    fn round_trip_raw_and_gzip_in_memory() {
        let a = IdxArray::new(vec![2, 3], vec![1, 2, 3, 4, 5, 6]).unwrap();
        let raw = a.encode();
        assert_eq!(&raw[..4], &[0, 0, 8, 2]);
        assert_eq!(IdxArray::from_bytes(&raw, p()).unwrap(), a);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        let gz = enc.finish().unwrap();
        assert!(is_gzip(&gz));
        assert_eq!(IdxArray::from_bytes(&gz, p()).unwrap(), a);
    }

    #[test]
    fn overflowing_dimensions_are_rejected_without_allocating() {
        let mut b = vec![0, 0, 8, 4];
        for _ in 0..4 {
            b.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        let e = IdxArray::from_bytes(&b, p()).unwrap_err().to_string();
        assert!(e.contains("header is corrupt"), "{e}");
    }

    #[test]
    fn every_prefix_of_a_file_is_an_error_not_a_panic() {
        let a = IdxArray::new(vec![2, 2, 2], (0..8).collect()).unwrap();
        let raw = a.encode();
        for k in 0..raw.len() {
            assert!(matches!(
                IdxArray::from_bytes(&raw[..k], p()),
                Err(Error::Format { .. })
            ));
        }
    }

    #[test]
    fn new_checks_length() {
        assert!(IdxArray::new(vec![2, 3], vec![0; 5]).is_err());
        assert!(IdxArray::new(vec![], vec![]).is_err());
    }
}
