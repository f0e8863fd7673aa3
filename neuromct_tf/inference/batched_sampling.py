"""Hamiltonian Monte Carlo on many datasets at once: chains x datasets in one batch.

The validation studies fit hundreds of pseudo-datasets of the same sources.
:func:`sample_posteriors_batched` samples the posterior of every dataset of
a :class:`~neuromct_tf.inference.batched.BatchedLikelihood` in one
``tf.function``. The state has shape (num_chains, D, 3 + S), so every chain
of every dataset is one batch member of a ``tfp.mcmc.HamiltonianMonteCarlo``
kernel with its own accept/reject step.

As in the single fit, the chains run in a whitened space z: the bijector of
the ``TransformedTransitionKernel`` maps z to u = u_mle + L z, with L the
Cholesky factor of each dataset's MLE covariance carried over to u, and u to
the physical parameters by the sigmoids of the prior box. One step size,
adapted by dual averaging during the burn-in, serves all datasets, because
the whitening makes their posteriors alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from neuromct_tf.errors import InvalidInputError
from neuromct_tf.inference.batched import BatchedLikelihood, BatchedMLEResult
from neuromct_tf.inference.sampling import stateless_seed

tfb = tfp.bijectors

#: Smallest distance, as a fraction of the box width, of the whitening centre from a box edge.
_EDGE_FRACTION = 1e-6


@dataclass(frozen=True)
class BatchedSamplerConfig:
    """Settings of the batched chains.

    Attributes
    ----------
    num_chains : int
        Chains per dataset.
    num_burnin_steps : int
        Steps discarded at the start. The first 80 % of them adapt the step size.
    num_results : int
        Draws kept per chain.
    num_leapfrog_steps : int
        Leapfrog steps per HMC proposal.
    target_accept_prob : float
        Mean acceptance probability sought by the step-size adaptation.
    seed : int
        Seed of the starting points and the transitions.
    """

    num_chains: int = 4
    num_burnin_steps: int = 40
    num_results: int = 50
    num_leapfrog_steps: int = 2
    target_accept_prob: float = 0.75
    seed: int = 0

    def __post_init__(self):
        if self.num_chains < 2:
            raise InvalidInputError(f"invalid number of chains {self.num_chains}; give at least 2, because R-hat needs at least 2 per dataset")
        if self.num_results < 4:
            raise InvalidInputError(f"invalid number of draws {self.num_results}; give at least 4, because split R-hat needs at least 4 per chain")
        if self.num_burnin_steps < 0 or self.num_leapfrog_steps < 1:
            raise InvalidInputError(
                f"invalid burn-in {self.num_burnin_steps} or leapfrog steps {self.num_leapfrog_steps}; "
                "give at least 0 and 1"
            )


@dataclass(frozen=True)
class BatchedPosteriors:
    """Posterior summaries of D datasets.

    Attributes
    ----------
    mean, std : numpy.ndarray of float64, shape (D, 3 + S)
        Posterior mean and standard deviation of every parameter.
    r_hat : numpy.ndarray of float64, shape (D, 3 + S)
        Split R-hat over the chains of each dataset.
    acceptance_rate : float
        Fraction of accepted proposals after the burn-in, over all chains and datasets.
    step_size : float
        Step size in the whitened space at the end of the adaptation.
    """

    mean: np.ndarray
    std: np.ndarray
    r_hat: np.ndarray
    acceptance_rate: float
    step_size: float


def whitening_bijectors(likelihood: BatchedLikelihood, mle: BatchedMLEResult) -> tfb.Bijector:
    """Return the bijector from whitened states z (..., D, 3 + S) to the physical parameters of each dataset.

    A dataset without a positive-definite Hessian is whitened with the
    identity around its MLE, so that its chains still run. The studies leave
    such datasets out of the statistics.
    """
    width = likelihood.upper - likelihood.lower
    fraction = np.clip((mle.points - likelihood.lower) / width, _EDGE_FRACTION, 1.0 - _EDGE_FRACTION)
    center = np.log(fraction) - np.log1p(-fraction)
    jacobian = width * fraction * (1.0 - fraction)  # d theta / d u, shape (D, P)

    num_params = likelihood.num_params
    scale_tril = np.tile(np.eye(num_params), (len(center), 1, 1))
    for index, covariance in enumerate(mle.covariances):
        if not mle.positive_definite[index]:
            continue
        covariance_u = covariance / np.outer(jacobian[index], jacobian[index])
        try:
            scale_tril[index] = np.linalg.cholesky(0.5 * (covariance_u + covariance_u.T))
        except np.linalg.LinAlgError:
            pass
    return tfb.Chain(
        [
            tfb.Sigmoid(low=tf.constant(likelihood.lower), high=tf.constant(likelihood.upper)),
            tfb.Shift(tf.constant(center, tf.float64)),
            tfb.ScaleMatvecTriL(tf.constant(scale_tril, tf.float64)),
        ]
    )


def sample_posteriors_batched(
    likelihood: BatchedLikelihood,
    counts: np.ndarray,
    mle: BatchedMLEResult,
    config: BatchedSamplerConfig = BatchedSamplerConfig(),
) -> BatchedPosteriors:
    """Sample the posteriors of D datasets with HMC, all chains of all datasets in one batch.

    The priors are uniform on the box and the normalisation range, as in
    :class:`~neuromct_tf.inference.model.PosteriorModel`, so inside the box
    the target is log L.

    Parameters
    ----------
    likelihood : BatchedLikelihood
        Surrogate, sources and box.
    counts : numpy.ndarray, shape (D, S, num_bins)
        Observed counts of every dataset.
    mle : BatchedMLEResult
        MLEs and covariances of the same datasets (the centre and scale of the whitening).
    config : BatchedSamplerConfig
        Chains, steps and seed.

    Returns
    -------
    BatchedPosteriors
    """
    counts = tf.constant(counts, tf.float64)
    num_datasets = int(counts.shape[0])
    bijector = whitening_bijectors(likelihood, mle)

    def target_log_prob(theta):  # theta: (num_chains, D, 3 + S) -> (num_chains, D)
        return -likelihood.poisson_terms(theta, counts)

    kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(
        tfp.mcmc.TransformedTransitionKernel(
            tfp.mcmc.HamiltonianMonteCarlo(
                target_log_prob, step_size=tf.constant(0.8, tf.float64), num_leapfrog_steps=config.num_leapfrog_steps
            ),
            bijector,
        ),
        num_adaptation_steps=int(0.8 * config.num_burnin_steps),
        target_accept_prob=tf.constant(config.target_accept_prob, tf.float64),
    )
    init_seed, chain_seed = tfp.random.split_seed(stateless_seed(config.seed), n=2, salt="neuromct_tf.batched_hmc")
    start = tf.random.stateless_normal(
        (config.num_chains, num_datasets, likelihood.num_params), seed=init_seed, dtype=tf.float64
    )

    @tf.function(autograph=False)
    def run(start, seed):
        return tfp.mcmc.sample_chain(
            num_results=config.num_results,
            num_burnin_steps=config.num_burnin_steps,
            current_state=bijector.forward(start),
            kernel=kernel,
            trace_fn=lambda _, results: (results.inner_results.inner_results.is_accepted, results.new_step_size),
            seed=seed,
        )

    samples, (accepted, step_sizes) = run(start, chain_seed)  # samples: (num_results, num_chains, D, 3 + S)
    r_hat = tfp.mcmc.potential_scale_reduction(samples, independent_chain_ndims=1, split_chains=True)
    samples = samples.numpy()
    return BatchedPosteriors(
        mean=samples.mean(axis=(0, 1)),
        std=samples.std(axis=(0, 1), ddof=1),
        r_hat=r_hat.numpy(),
        acceptance_rate=float(np.mean(accepted.numpy())),
        step_size=float(step_sizes.numpy()[-1]),
    )
