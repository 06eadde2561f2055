//! The gradient graph: every op's backward rule against central finite
//! differences in f64 (the f64 reference backend runs the same rules), the
//! f32 CPU and the GPU against the f64 run, fusion, noise masks and bad
//! graphs.

#[macro_use]
mod common;

use ebmkit::autodiff::check::check;
use ebmkit::autodiff::{param_grads, Bindings, Graph, Loss, Noise, Plan, Var};
use ebmkit::backend::reference::F64;
use ebmkit::prelude::*;

/// Values in [lo, hi), away from 0 by at least `gap` when `gap > 0` (the
/// kinks of ReLU, |x| and the shrink sit at 0 or ±λ).
fn values(rows: usize, cols: usize, seed: u64, (lo, hi): (f32, f32), gap: f32) -> HostMat {
    let d = RngStream::new(seed, 31).next_draw();
    HostMat::from_fn(rows, cols, |r, c| {
        let x = lo + (hi - lo) * d.uniform(r * cols + c);
        if gap > 0.0 && x.abs() < gap {
            x + 2.0 * gap * x.signum().max(0.5)
        } else {
            x
        }
    })
}

/// A graph whose loss is `Σ out ⊙ R` for a fixed random R: every entry of
/// `out` gets its own weight, so a wrong entry of a gradient shows.
struct Case {
    g: Graph,
    params: Vec<HostMat>,
    inputs: Vec<HostMat>,
}

impl Case {
    fn new() -> Case {
        Case {
            g: Graph::new(),
            params: vec![],
            inputs: vec![],
        }
    }
    fn param(&mut self, name: &str, v: HostMat) -> Var {
        let p = self.g.param(name, v.rows, v.cols);
        self.params.push(v);
        p
    }
    fn input(&mut self, name: &str, v: HostMat) -> Var {
        let x = self.g.input(name, v.rows, v.cols);
        self.inputs.push(v);
        x
    }
    /// `Σ out ⊙ R` (R an input) as the loss.
    fn weighted(&mut self, out: Var, seed: u64) -> Var {
        let (r, c) = self.g.shape(out);
        let w = self.input("R", values(r, c, seed, (-1.0, 1.0), 0.0));
        let m = self.g.mul(out, w).unwrap();
        self.g.sum(m)
    }
    fn assert_gradients(&self, loss: Var, what: &str) {
        let rep = check(&self.g, loss, &self.params, &self.inputs, 5).unwrap();
        eprintln!(
            "{what}: {} entries, max rel err {:.2e} at {}",
            rep.checked, rep.max_rel_err, rep.worst
        );
        assert!(rep.checked > 0, "{what}: nothing checked");
        assert!(rep.max_rel_err < 1e-6, "{what}: {}", rep.worst);
    }
}

#[test]
fn matmul_every_transpose() {
    for ta in [Trans::N, Trans::T] {
        for tb in [Trans::N, Trans::T] {
            let mut c = Case::new();
            let (m, k, n) = (3, 4, 5);
            let (ar, ac) = ta.apply((m, k));
            let (br, bc) = tb.apply((k, n));
            let a = c.param("A", values(ar, ac, 1, (-1.0, 1.0), 0.0));
            let b = c.param("B", values(br, bc, 2, (-1.0, 1.0), 0.0));
            let y = c.g.matmul(a, ta, b, tb).unwrap();
            let loss = c.weighted(y, 3);
            c.assert_gradients(loss, &format!("matmul {ta:?}{tb:?}"));
        }
    }
}

#[test]
fn broadcasts_and_sums() {
    type Build = fn(&mut Graph, Var, Var) -> ebmkit::Result<Var>;
    let cases: [(&str, bool, Build); 4] = [
        ("add_row", true, |g, x, v| g.add_row(x, v)),
        ("add_col", false, |g, x, v| g.add_col(x, v)),
        ("mul_row", true, |g, x, v| g.mul_row(x, v)),
        ("mul_col", false, |g, x, v| g.mul_col(x, v)),
    ];
    for (name, row, build) in cases {
        let mut c = Case::new();
        let x = c.param("x", values(4, 3, 4, (-1.0, 1.0), 0.0));
        let shape = if row { (1, 3) } else { (4, 1) };
        let v = c.param("v", values(shape.0, shape.1, 5, (-1.0, 1.0), 0.0));
        let y = build(&mut c.g, x, v).unwrap();
        let loss = c.weighted(y, 6);
        c.assert_gradients(loss, name);
    }
    for which in 0..3 {
        let mut c = Case::new();
        let x = c.param("x", values(4, 3, 7, (-1.0, 1.0), 0.0));
        let y = match which {
            0 => c.g.sum_rows(x),
            1 => c.g.sum_cols(x),
            _ => c.g.sum(x),
        };
        let y2 = c.g.square(y);
        let loss = c.weighted(y2, 8);
        c.assert_gradients(loss, &format!("sum {which}"));
    }
}

#[test]
fn every_elementwise_map() {
    for f in [
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Relu,
        Unary::Softplus,
        Unary::Exp,
        Unary::Log,
        Unary::Square,
        Unary::Sqrt,
        Unary::Neg,
        Unary::Abs,
    ] {
        let range = match f {
            Unary::Log | Unary::Sqrt => (0.2, 3.0),
            _ => (-2.0, 2.0),
        };
        let mut c = Case::new();
        let x = c.param("x", values(3, 5, f as u64 + 10, range, 0.05));
        let y = c.g.map(f, x);
        let loss = c.weighted(y, 11);
        c.assert_gradients(loss, &format!("{f:?}"));
    }
}

#[test]
fn zips_affine_shrink_and_a_node_used_twice() {
    for which in 0..4 {
        let mut c = Case::new();
        let a = c.param("a", values(3, 4, 12, (-1.0, 1.0), 0.0));
        let b = c.param("b", values(3, 4, 13, (-1.0, 1.0), 0.0));
        let y = match which {
            0 => c.g.add(a, b).unwrap(),
            1 => c.g.sub(a, b).unwrap(),
            2 => c.g.mul(a, b).unwrap(),
            // x ⊙ x: both arguments of one node are the same parameter.
            _ => c.g.mul(a, a).unwrap(),
        };
        let y = c.g.affine(y, -1.5, 0.25);
        let loss = c.weighted(y, 14);
        c.assert_gradients(loss, &format!("zip {which}"));
    }
    let mut c = Case::new();
    let x = c.param("x", values(4, 6, 15, (-2.0, 2.0), 0.0));
    // Away from the kinks at ±0.5.
    let x_host = c.params[0].clone();
    c.params[0] = HostMat::from_fn(4, 6, |r, k| {
        let v = x_host.get(r, k);
        if (v.abs() - 0.5).abs() < 0.05 {
            v + 0.1
        } else {
            v
        }
    });
    let y = c.g.shrink(x, 0.5).unwrap();
    let loss = c.weighted(y, 16);
    c.assert_gradients(loss, "shrink");
}

#[test]
fn noise_masks_pass_the_gradient_of_what_they_keep() {
    for noise in [
        Noise::Masking(0.3),
        Noise::Dropout(0.5),
        Noise::SaltPepper(0.25),
        Noise::Gaussian(0.4),
    ] {
        let mut c = Case::new();
        let x = c.param("x", values(6, 7, 17, (0.0, 1.0), 0.0));
        let y = c.g.noise(x, noise).unwrap();
        let y2 = c.g.square(y);
        let loss = c.weighted(y2, 18);
        c.assert_gradients(loss, &format!("{noise:?}"));
    }
}

#[test]
fn the_fused_losses_and_the_sparsity_penalty() {
    for loss in [Loss::SigmoidBce, Loss::SoftmaxXent, Loss::SquaredError] {
        let mut c = Case::new();
        let z = c.param("z", values(5, 4, 19, (-2.0, 2.0), 0.0));
        // Targets as parameters too, so their gradient is checked: a
        // distribution per row for the softmax, values in (0, 1) else.
        let t = values(5, 4, 20, (0.05, 1.0), 0.0);
        let t = if loss == Loss::SoftmaxXent {
            HostMat::from_fn(5, 4, |r, k| t.get(r, k) / t.row(r).iter().sum::<f32>())
        } else {
            t
        };
        let tv = c.param("t", t);
        let l = c.g.loss(loss, z, tv).unwrap();
        let l = c.g.scale(l, 1.7);
        c.assert_gradients(l, &format!("{loss:?}"));
    }
    let mut c = Case::new();
    let a = c.param("a", values(8, 5, 21, (-2.0, 2.0), 0.0));
    let h = c.g.sigmoid(a);
    let l = c.g.kl_sparsity(h, 0.1).unwrap();
    c.assert_gradients(l, "KL sparsity");
}

/// A tied auto-encoder with a contractive penalty, the graph a model
/// states: sigmoid encoder, decoder Wᵀ (W used twice), BCE from logits,
/// λ Σ_j (h_j (1 - h_j))² Σ_i W_ij².
fn tied_cae(c: &mut Case, masking: bool) -> Var {
    let (n, nv, nh) = (6, 5, 3);
    let x = c.input("x", values(n, nv, 22, (0.0, 1.0), 0.0));
    let w = c.param("W", values(nv, nh, 23, (-0.5, 0.5), 0.0));
    let bh = c.param("b_h", values(1, nh, 24, (-0.5, 0.5), 0.0));
    let bv = c.param("b_v", values(1, nv, 25, (-0.5, 0.5), 0.0));
    let g = &mut c.g;
    let xin = if masking {
        g.noise(x, Noise::Masking(0.25)).unwrap()
    } else {
        x
    };
    let pre = g.matmul(xin, Trans::N, w, Trans::N).unwrap();
    let pre = g.add_row(pre, bh).unwrap();
    let h = g.sigmoid(pre);
    let back = g.matmul(h, Trans::N, w, Trans::T).unwrap();
    let z = g.add_row(back, bv).unwrap();
    let rec = g.loss(Loss::SigmoidBce, z, x).unwrap();
    // Contractive penalty.
    let one_minus = g.affine(h, -1.0, 1.0);
    let s = g.mul(h, one_minus).unwrap();
    let s2 = g.square(s);
    let w2 = g.square(w);
    let col = g.sum_rows(w2);
    let colt = g.matmul(col, Trans::N, col, Trans::T).unwrap(); // 1x1, exercises 1-row GEMMs
    let per = g.mul_row(s2, col).unwrap();
    let pen = g.sum(per);
    let pen = g.scale(pen, 0.1 / n as f32);
    let small = g.scale(colt, 1e-3);
    let l = g.add(rec, pen).unwrap();
    g.add(l, small).unwrap()
}

#[test]
fn a_tied_contractive_auto_encoder() {
    for masking in [false, true] {
        let mut c = Case::new();
        let loss = tied_cae(&mut c, masking);
        c.assert_gradients(loss, &format!("tied CAE, masking {masking}"));
    }
}

/// The same graph on the f32 CPU backend gives the f64 gradients to f32
/// rounding, with the sigmoid chain fused.
fn on_backend<B: Fused>(be: &B, c: &Case, loss: Var) -> (f32, Vec<HostMat>, usize) {
    let mut plan = Plan::new(be, &c.g, loss, &[]).unwrap();
    let p: Vec<B::Mat> = c.params.iter().map(|m| be.upload(m).unwrap()).collect();
    let i: Vec<B::Mat> = c.inputs.iter().map(|m| be.upload(m).unwrap()).collect();
    let (pr, ir): (Vec<&B::Mat>, Vec<&B::Mat>) = (p.iter().collect(), i.iter().collect());
    let b = Bindings {
        params: &pr,
        inputs: &ir,
    };
    plan.step(be, &b, &mut RngStream::new(5, 0)).unwrap();
    let l = be.download(plan.loss_value().unwrap()).unwrap().data[0];
    (l, param_grads(be, &plan).unwrap(), plan.fused_nodes())
}

fn assert_grads_close(what: &str, got: &[HostMat], want: &[HostMat], tol: f32) {
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        let scale = b.data.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        let d = a.max_abs_diff(b).unwrap();
        assert!(
            d <= tol * scale,
            "{what}: parameter {k} differs by {d} (scale {scale})"
        );
    }
}

#[test]
fn f32_backends_follow_the_f64_rules() {
    let mut c = Case::new();
    let loss = tied_cae(&mut c, true);
    let (l64, g64, _) = on_backend(&F64, &c, loss);
    let (l32, g32, fused) = on_backend(&Cpu::new(), &c, loss);
    assert_eq!(
        fused, 1,
        "the encoder's GEMM + bias + sigmoid runs as one pass"
    );
    assert!(
        (l32 - l64).abs() < 1e-5 * l64.abs().max(1.0),
        "loss {l32} vs {l64}"
    );
    assert_grads_close("cpu vs f64", &g32, &g64, 1e-4);
}

#[test]
fn gpu_gradients_agree_with_the_cpu() {
    let g = gpu_or_skip!();
    let mut c = Case::new();
    let loss = tied_cae(&mut c, true);
    let (lc, gc, _) = on_backend(&Cpu::new(), &c, loss);
    let (lg, gg, fused) = on_backend(g, &c, loss);
    assert_eq!(fused, 1);
    assert!(
        (lc - lg).abs() < 1e-5 * lc.abs().max(1.0),
        "loss {lg} vs {lc}"
    );
    assert_grads_close("gpu vs cpu", &gg, &gc, 1e-4);
    // A softmax classifier head too.
    let mut c = Case::new();
    let z0 = c.param("W", values(6, 4, 40, (-1.0, 1.0), 0.0));
    let x = c.input("x", values(9, 6, 41, (0.0, 1.0), 0.0));
    let t = c.input(
        "t",
        HostMat::from_fn(9, 4, |r, k| (r % 4 == k) as u8 as f32),
    );
    let z = c.g.matmul(x, Trans::N, z0, Trans::N).unwrap();
    let l = c.g.loss(Loss::SoftmaxXent, z, t).unwrap();
    let (lc, gc, _) = on_backend(&Cpu::new(), &c, l);
    let (lg, gg, _) = on_backend(g, &c, l);
    assert!((lc - lg).abs() < 1e-5, "softmax loss {lg} vs {lc}");
    assert_grads_close("softmax gpu vs cpu", &gg, &gc, 1e-4);
}

#[test]
fn noise_masks_are_the_same_on_every_backend() {
    let mut c = Case::new();
    let x = c.param("x", values(20, 30, 50, (0.0, 1.0), 0.0));
    let y = c.g.noise(x, Noise::SaltPepper(0.3)).unwrap();
    let loss = c.weighted(y, 51);
    let run = |be: &dyn Fn() -> HostMat| be();
    let on = |c: &Case| -> HostMat {
        let cpu = Cpu::new();
        let mut plan = Plan::new(&cpu, &c.g, loss, &[y]).unwrap();
        let (p, i) = (
            c.params.iter().collect::<Vec<_>>(),
            c.inputs.iter().collect::<Vec<_>>(),
        );
        plan.forward(
            &cpu,
            &Bindings {
                params: &p,
                inputs: &i,
            },
            &mut RngStream::new(9, 0),
        )
        .unwrap();
        plan.value(y).unwrap().clone()
    };
    let cpu_y = run(&|| on(&c));
    let f64_y = {
        let mut plan = Plan::new(&F64, &c.g, loss, &[y]).unwrap();
        let p: Vec<_> = c.params.iter().map(|m| F64.upload(m).unwrap()).collect();
        let i: Vec<_> = c.inputs.iter().map(|m| F64.upload(m).unwrap()).collect();
        let (pr, ir): (Vec<_>, Vec<_>) = (p.iter().collect(), i.iter().collect());
        plan.forward(
            &F64,
            &Bindings {
                params: &pr,
                inputs: &ir,
            },
            &mut RngStream::new(9, 0),
        )
        .unwrap();
        F64.download(plan.value(y).unwrap()).unwrap()
    };
    assert_eq!(cpu_y, f64_y, "salt and pepper: the same corruption");
    let changed = cpu_y
        .data
        .iter()
        .zip(&c.params[0].data)
        .filter(|(a, b)| a != b)
        .count();
    let frac = changed as f64 / cpu_y.data.len() as f64;
    assert!((frac - 0.3).abs() < 0.08, "corrupted fraction {frac}");
}

#[test]
fn bad_graphs_and_bindings_are_errors() {
    let mut g = Graph::new();
    let x = g.input("x", 4, 3);
    let w = g.param("W", 5, 2);
    let e = g.matmul(x, Trans::N, w, Trans::N).unwrap_err().to_string();
    assert!(
        e.contains("matmul") && e.contains("4x3") && e.contains("5x2"),
        "{e}"
    );
    let v = g.param("v", 1, 2);
    assert!(g.add_row(x, v).unwrap_err().to_string().contains("1x3"));
    assert!(g.noise(x, Noise::Masking(1.0)).is_err());
    assert!(g.noise(x, Noise::Gaussian(0.0)).is_err());
    assert!(g.kl_sparsity(x, 1.5).is_err());
    let w = g.param("W2", 3, 2);
    let y = g.matmul(x, Trans::N, w, Trans::N).unwrap();
    let s = g.map(Unary::NreluLogPartition, y);
    let l = g.sum(s);
    let cpu = Cpu::new();
    let e = Plan::new(&cpu, &g, l, &[]).err().unwrap().to_string();
    assert!(
        e.contains("NreluLogPartition") && e.contains("no gradient"),
        "{e}"
    );
    assert!(
        Plan::new(&cpu, &g, y, &[]).is_err(),
        "a 4x2 node is no loss"
    );
    // Bindings of the wrong count or shape name the leaf.
    let l = g.sum(y);
    let mut plan = Plan::new(&cpu, &g, l, &[]).unwrap();
    let (xv, bad) = (HostMat::zeros(4, 3), HostMat::zeros(2, 2));
    let (pw, pv, pw2) = (
        HostMat::zeros(5, 2),
        HostMat::zeros(1, 2),
        HostMat::zeros(3, 2),
    );
    let b = Bindings {
        params: &[&pw, &pv, &bad],
        inputs: &[&xv],
    };
    let e = plan
        .forward(&cpu, &b, &mut RngStream::new(1, 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'W2'") && e.contains("3x2") && e.contains("2x2"),
        "{e}"
    );
    let b = Bindings {
        params: &[&pw, &pv, &pw2],
        inputs: &[],
    };
    assert!(plan.forward(&cpu, &b, &mut RngStream::new(1, 1)).is_err());
}
