//! The backend chosen at run time: a flag or `EBMKIT_BACKEND` names it
//! ([`Choice`], parsed with [`FromStr`](std::str::FromStr) so that no CLI
//! crate reaches this floor), and [`AnyBackend`] holds it. Model code stays
//! generic; [`with_backend!`](crate::with_backend) binds the concrete type.

use super::{cpu, gpu, Backend};
use crate::error::{Error, Result};

/// Which backend to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Choice {
    /// The best hardware GPU adapter if one is found, else the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl std::str::FromStr for Choice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Choice::Auto),
            "cpu" => Ok(Choice::Cpu),
            "gpu" => Ok(Choice::Gpu),
            other => Err(Error::value(
                "backend",
                format!("'{other}' is not one of auto, cpu, gpu"),
            )),
        }
    }
}

/// The environment variable that forces a backend when no flag is given.
pub const BACKEND_ENV: &str = "EBMKIT_BACKEND";

/// A backend chosen at run time. Model code is generic; the CLI dispatches
/// through [`with_backend!`](crate::with_backend).
pub enum AnyBackend {
    Cpu(cpu::Cpu),
    Gpu(gpu::Gpu),
}

impl AnyBackend {
    /// `choice` from a flag, else `EBMKIT_BACKEND`, else auto. Auto falls back
    /// to the CPU, saying so once on stderr, when no GPU adapter exists.
    pub fn select(choice: Option<Choice>) -> Result<AnyBackend> {
        let choice = match choice {
            Some(c) => c,
            None => match std::env::var(BACKEND_ENV) {
                Ok(s) => s.parse()?,
                Err(_) => Choice::Auto,
            },
        };
        match choice {
            Choice::Cpu => Ok(AnyBackend::Cpu(cpu::Cpu::new())),
            Choice::Gpu => Ok(AnyBackend::Gpu(gpu::Gpu::new()?)),
            Choice::Auto => match gpu::Gpu::new() {
                Ok(g) if g.is_software() => {
                    eprintln!(
                        "ebmkit: only a software GPU adapter ({}); running on the CPU backend \
                         (--backend gpu forces it)",
                        g.name()
                    );
                    Ok(AnyBackend::Cpu(cpu::Cpu::new()))
                }
                Ok(g) => Ok(AnyBackend::Gpu(g)),
                Err(e) => {
                    eprintln!("ebmkit: {e}; running on the CPU backend");
                    Ok(AnyBackend::Cpu(cpu::Cpu::new()))
                }
            },
        }
    }
    pub fn name(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => b.name(),
            AnyBackend::Gpu(b) => b.name(),
        }
    }
}

/// Runs a generic expression with `$b` bound to the concrete backend.
#[macro_export]
macro_rules! with_backend {
    ($any:expr, |$b:ident| $body:expr) => {
        match $any {
            $crate::backend::AnyBackend::Cpu($b) => $body,
            $crate::backend::AnyBackend::Gpu($b) => $body,
        }
    };
}
