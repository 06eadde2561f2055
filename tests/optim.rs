//! The backprop optimisers against a host transcription of PyTorch's
//! `torch.optim.SGD` / `Adam` and `clip_grad_norm_`, for several steps, on
//! the CPU and the GPU.

#[macro_use]
mod common;

use ebmkit::prelude::*;
use ebmkit::train::optim::{OptimConfig, Optimizer, Rule};

fn mat(rows: usize, cols: usize, seed: u64) -> HostMat {
    let d = RngStream::new(seed, 44).next_draw();
    HostMat::from_fn(rows, cols, |r, c| 2.0 * d.uniform(r * cols + c) - 1.0)
}

/// PyTorch's update rules in f64, parameter by parameter.
fn reference(
    cfg: OptimConfig,
    theta: &mut [Vec<f64>],
    grads: &[Vec<Vec<f64>>],
    lr: f64,
    mom: f64,
    decay: &[bool],
) {
    let mut m: Vec<Vec<f64>> = theta.iter().map(|t| vec![0.0; t.len()]).collect();
    let mut v = m.clone();
    for (step, g) in grads.iter().enumerate() {
        let norm: f64 = g.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
        let f = match cfg.clip_norm {
            Some(c) => (c as f64 / (norm + 1e-30)).min(1.0),
            None => 1.0,
        };
        for (i, th) in theta.iter_mut().enumerate() {
            for e in 0..th.len() {
                let mut d = g[i][e] * f;
                if decay[i] {
                    d += cfg.weight_decay as f64 * th[e];
                }
                match cfg.rule {
                    Rule::Sgd { nesterov } => {
                        m[i][e] = mom * m[i][e] + d;
                        th[e] -= lr * if nesterov { d + mom * m[i][e] } else { m[i][e] };
                    }
                    Rule::Adam { beta1, beta2, eps } => {
                        let (b1, b2, t) = (beta1 as f64, beta2 as f64, step as i32 + 1);
                        m[i][e] = b1 * m[i][e] + (1.0 - b1) * d;
                        v[i][e] = b2 * v[i][e] + (1.0 - b2) * d * d;
                        let (bc1, bc2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
                        th[e] -= lr / bc1 * m[i][e] / (v[i][e].sqrt() / bc2.sqrt() + eps as f64);
                    }
                }
            }
        }
    }
}

fn run<B: Backend>(be: &B, cfg: OptimConfig, tag: &str) {
    let shapes = [(4, 3), (1, 3)];
    let decay = [true, false];
    let init: Vec<HostMat> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(r, c))| mat(r, c, i as u64))
        .collect();
    // Four steps of gradients, scaled up so that clipping bites.
    let grads: Vec<Vec<HostMat>> = (0..4)
        .map(|s| {
            shapes
                .iter()
                .enumerate()
                .map(|(i, &(r, c))| {
                    let g = mat(r, c, 100 + 10 * s + i as u64);
                    HostMat::from_fn(r, c, |a, b| 3.0 * g.get(a, b))
                })
                .collect()
        })
        .collect();
    let (lr, mom) = (0.05f32, 0.9f32);
    let mut opt = Optimizer::new(be, &shapes, &decay, cfg).unwrap();
    let mut params: Vec<B::Mat> = init.iter().map(|m| be.upload(m).unwrap()).collect();
    for g in &grads {
        let gd: Vec<B::Mat> = g.iter().map(|m| be.upload(m).unwrap()).collect();
        let gr: Vec<&B::Mat> = gd.iter().collect();
        let mut pr: Vec<&mut B::Mat> = params.iter_mut().collect();
        opt.step(be, &mut pr, &gr, lr, mom).unwrap();
    }
    let mut theta: Vec<Vec<f64>> = init
        .iter()
        .map(|m| m.data.iter().map(|&x| x as f64).collect())
        .collect();
    let g64: Vec<Vec<Vec<f64>>> = grads
        .iter()
        .map(|s| {
            s.iter()
                .map(|m| m.data.iter().map(|&x| x as f64).collect())
                .collect()
        })
        .collect();
    reference(cfg, &mut theta, &g64, lr as f64, mom as f64, &decay);
    for (i, p) in params.iter().enumerate() {
        let got = be.download(p).unwrap();
        for (a, b) in got.data.iter().zip(&theta[i]) {
            assert!(
                (*a as f64 - b).abs() < 2e-5,
                "{tag} {cfg:?}: parameter {i}: {a} vs {b}"
            );
        }
    }
}

fn configs() -> Vec<OptimConfig> {
    let mut out = Vec::new();
    for rule in [
        Rule::Sgd { nesterov: false },
        Rule::Sgd { nesterov: true },
        Rule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    ] {
        for (weight_decay, clip_norm) in [(0.0, None), (0.01, None), (0.01, Some(1.5))] {
            out.push(OptimConfig {
                rule,
                weight_decay,
                clip_norm,
            });
        }
    }
    out
}

#[test]
fn cpu_steps_follow_the_pytorch_rules() {
    for cfg in configs() {
        run(&Cpu::new(), cfg, "cpu");
    }
}

#[test]
fn gpu_steps_follow_the_pytorch_rules() {
    let g = gpu_or_skip!();
    for cfg in configs() {
        run(g, cfg, "gpu");
    }
}

#[test]
fn bad_settings_are_refused() {
    let cpu = Cpu::new();
    let sgd = Rule::Sgd { nesterov: false };
    let cfg = |weight_decay, clip_norm, rule| OptimConfig {
        rule,
        weight_decay,
        clip_norm,
    };
    assert!(Optimizer::new(&cpu, &[(2, 2)], &[true], cfg(-1.0, None, sgd)).is_err());
    assert!(Optimizer::new(&cpu, &[(2, 2)], &[true], cfg(0.0, Some(0.0), sgd)).is_err());
    let adam = Rule::Adam {
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
    };
    assert!(Optimizer::new(&cpu, &[(2, 2)], &[true], cfg(0.0, None, adam)).is_err());
    let mut opt = Optimizer::new(&cpu, &[(2, 2)], &[true], cfg(0.0, None, sgd)).unwrap();
    let mut p = HostMat::zeros(2, 2);
    let e = opt.step(&cpu, &mut [&mut p], &[], 0.1, 0.0).unwrap_err();
    assert!(e.to_string().contains("1 parameters"), "{e}");
}
