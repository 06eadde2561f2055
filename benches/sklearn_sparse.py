"""scikit-learn peer of benches/sparse.rs: the plain calls a user of
scikit-learn writes for sparse coding on patches.

usage: sklearn_sparse.py TRAIN.npy TEST.npy OUT_DIR

1. MiniBatchDictionaryLearning(256 atoms, alpha=0.1, batch_size=100,
   max_iter=1: one pass) on TRAIN, timed; its dictionary goes to
   OUT_DIR/dict.npy, and its held-out objective (codes of TEST by
   lasso_cd) is reported.
2. SparseCoder(transform_algorithm="lasso_cd", transform_alpha=0.1) with
   that dictionary on TRAIN (the inference workload), timed; the mean
   objective it reaches is reported.

Prints one JSON line. Threads: 2 (threadpoolctl), float32 data as
scikit-learn keeps it where it can.
"""
import json
import sys
import time

import numpy as np
from sklearn.decomposition import MiniBatchDictionaryLearning, SparseCoder, sparse_encode
from threadpoolctl import threadpool_limits

LAMBDA = 0.1


def objective(x, d, z):
    x, d, z = (a.astype(np.float64) for a in (x, d, z))
    r = x - z @ d
    return float((0.5 * (r * r).sum(axis=1) + LAMBDA * np.abs(z).sum(axis=1)).mean())


def main():
    train = np.load(sys.argv[1]).astype(np.float32)
    test = np.load(sys.argv[2]).astype(np.float32)
    out = sys.argv[3]
    with threadpool_limits(2):
        t0 = time.perf_counter()
        mbdl = MiniBatchDictionaryLearning(n_components=256, alpha=LAMBDA, batch_size=100,
                                           max_iter=1, random_state=0)
        mbdl.fit(train)
        t_learn = time.perf_counter() - t0
        d = mbdl.components_.astype(np.float32)
        np.save(f"{out}/dict.npy", d)
        z_test = sparse_encode(test, d, algorithm="lasso_cd", alpha=LAMBDA)
        heldout = objective(test, d, z_test)

        coder = SparseCoder(dictionary=d, transform_algorithm="lasso_cd", transform_alpha=LAMBDA)
        t0 = time.perf_counter()
        z = coder.transform(train)
        t_infer = time.perf_counter() - t0
    print(json.dumps({
        "peer": "scikit-learn %s (MiniBatchDictionaryLearning one pass; SparseCoder lasso_cd), 2 threads"
                % __import__("sklearn").__version__,
        "learn_s": t_learn, "learn_heldout": heldout,
        "infer_s": t_infer, "infer_objective": objective(train, d, z),
    }))


if __name__ == "__main__":
    main()
