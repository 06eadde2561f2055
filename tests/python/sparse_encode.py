"""Lasso codes by scikit-learn for tests/sparse.rs.

usage: sparse_encode.py DICT.npy X.npy LAMBDA [positive]

Codes each row x of X against the atoms (rows) of DICT, minimising
0.5 * ||x - z D||^2 + LAMBDA * ||z||_1, twice: with
sklearn.decomposition.sparse_encode(algorithm="lasso_cd") as a user calls
it, and with sklearn.linear_model.Lasso at tol=1e-10 (what lasso_cd runs,
with alpha = LAMBDA / n_features). Prints the mean objective per row of
each, in float64, on one line: "sparse_encode OBJ lasso OBJ".
"""
import sys

import numpy as np
from sklearn.decomposition import sparse_encode
from sklearn.linear_model import Lasso


def objective(x, d, z, lam):
    r = x - z @ d
    return float((0.5 * (r * r).sum(axis=1) + lam * np.abs(z).sum(axis=1)).mean())


def main():
    d = np.load(sys.argv[1]).astype(np.float64)
    x = np.load(sys.argv[2]).astype(np.float64)
    lam = float(sys.argv[3])
    positive = len(sys.argv) > 4 and sys.argv[4] == "positive"
    z1 = sparse_encode(x, d, algorithm="lasso_cd", alpha=lam, max_iter=100000, positive=positive)
    lasso = Lasso(alpha=lam / d.shape[1], fit_intercept=False, tol=1e-10, max_iter=1000000,
                  positive=positive)
    z2 = np.stack([lasso.fit(d.T, row).coef_.copy() for row in x])
    print(f"sparse_encode {objective(x, d, z1, lam):.12e} lasso {objective(x, d, z2, lam):.12e}")


if __name__ == "__main__":
    main()
