"""K seeds of SB3's PPO as one program: one batched network, one rollout of K x N environments, one update.

Each member is SB3's PPO, not a look-alike:

- **Its model** is an SB3 ``PPO`` built as SB3 builds it for the member's seed (the hyperparameters checked and
  parsed by SB3, schedules included); its ``ActorCriticPolicy`` gives the member's initial weights, so member k
  starts where ``PPO(..., seed=seed_k)`` starts. The K policies are stacked into one network
  (:func:`syre_rl.members.stack_modules`) trained by one Adam (SB3's optimizer class and arguments), and the
  method acts on it with one settings object per member (:mod:`syre_rl.base`).
- **Its rollout** follows ``OnPolicyAlgorithm.collect_rollouts``: actions sampled from the policy's distribution
  (each member from its own generator), clipped to a Box's bounds for the env, time-limit truncations bootstrapped
  with ``gamma * V(terminal observation)``, the buffer's GAE as ``RolloutBuffer.compute_returns_and_advantage``.
- **Its update** is ``PPO.train``: per epoch a random order of the buffer (each member its own), minibatches of
  ``batch_size``, advantages normalised per minibatch, clipped surrogate, optional value clipping, entropy bonus,
  gradient-norm clipping (each member's own norm) and the optimizer's step.

Members never mix: the loss is the sum of the members' losses, so each member's gradient is its own.
tests/test_batched.py feeds one rollout and one minibatch order to SB3's ``PPO.train()`` and to :meth:`BatchedPPO.train`
and compares every member's losses and gradients in float64.
"""

from __future__ import annotations

import collections
import ctypes
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from torch.distributions import Categorical, Distribution, Normal

from syre_rl.base import Method
from syre_rl.envs.members import EpisodeEnd, MemberEnvs
from syre_rl.members import member_optimizer_state, member_state, stack_modules, stack_optimizer_states, stack_states
from syre_rl.methods import make_method
from syre_rl.policies import target_params
from syre_rl.settings import Settings

TRAIN_FIGURES = ("entropy_loss", "policy_gradient_loss", "value_loss", "approx_kl", "clip_fraction")


def check_batchable(model: PPO) -> None:
    """Refuse, in one line, a PPO that the batched learner does not run as SB3 would."""
    why = []
    if model.use_sde:
        why.append("gSDE (use_sde)")
    if model.target_kl is not None:
        why.append("target_kl (each seed would stop its epochs at another minibatch)")
    if not (isinstance(model.observation_space, spaces.Box) and len(model.observation_space.shape) == 1):
        why.append(f"observation space {model.observation_space} (a 1-D Box is batched)")
    if not isinstance(model.action_space, (spaces.Discrete, spaces.Box)):
        why.append(f"action space {model.action_space} (Discrete and Box are batched)")
    if getattr(model.policy, "squash_output", False):
        why.append("squashed actions")
    if why:
        raise ValueError(
            f"--seeds trains PPO batched, which does not support {', '.join(why)}; run the seeds one by one"
        )


class BatchedPPO:
    """K seeds of PPO as one batched network (see the module docstring).

    :param models: the members' SB3 PPO models, built as SB3 builds them for each seed (vanilla policies, one
        architecture and one set of hyperparameters): their initial weights, hyperparameters and schedules
    :param envs: the members' envs, ``models[0].n_envs`` each (:mod:`syre_rl.envs.members`)
    :param method: the method's name; ``settings``: its settings, one per member (they may differ in seed only)
    :param targets: networks under the method (``actor``, ``critic``), one method per target as in
        :class:`syre_rl.policies.MethodPolicy`
    :param seeds: the members' seeds (of their action samples and minibatch orders)
    """

    def __init__(
        self,
        models: Sequence[PPO],
        envs: MemberEnvs,
        method: str,
        settings: Sequence[Settings],
        targets: Sequence[str],
        seeds: Sequence[int],
    ):
        for model in models:
            check_batchable(model)
        first = self.first = models[0]
        self.members, self.n_envs, self.envs = len(models), first.n_envs, envs
        self.device = first.device
        self.discrete = isinstance(first.action_space, spaces.Discrete)
        self.policy: Any = stack_modules([m.policy for m in models])  # an ActorCriticPolicy's modules, batched
        self.policy.set_training_mode(False)
        policy = first.policy
        # SB3's optimizer and its arguments, in torch's multi-tensor implementation (the same update, one kernel
        # per step and state instead of a loop over the parameters), unless they ask for the fused one
        kwargs = dict(policy.optimizer_kwargs)
        if policy.optimizer_class in (torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.SGD):
            if not kwargs.get("fused"):
                kwargs.setdefault("foreach", True)
        self.optimizer = policy.optimizer_class(self.policy.parameters(), lr=first.lr_schedule(1), **kwargs)
        self.methods: dict[str, Method] = {}
        if method != "vanilla":
            for target in targets:
                names = target_params(self.policy, target)
                self.methods[target] = make_method(method, list(settings)).attach(self.policy, self.optimizer, names)
        self.seeds = list(seeds)
        self.generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]
        self.order_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.num_timesteps, self.n_updates = 0, 0
        self.ep_info = [collections.deque(maxlen=first._stats_window_size) for _ in range(self.members)]
        self.last_obs: torch.Tensor | None = None
        self.last_starts = torch.ones(self.members, self.n_envs, device=self.device)
        self.dtype = next(self.policy.parameters()).dtype
        self.on_step: Callable[[BatchedPPO], None] | None = None  # after every env step (task schedules)
        self.check_data: Callable[[str, torch.Tensor], None] | None = None  # the guard's half for data
        # seconds spent stepping the envs, collecting rollouts (envs included) and updating
        self.timings: collections.Counter[str] = collections.Counter()

    # The policy, batched: observations (K, B, obs), as SB3's ActorCriticPolicy computes them
    def _latents(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.mlp_extractor(obs.to(self.dtype))  # a 1-D Box: features are the observations

    def distribution(self, latent_pi: torch.Tensor) -> Distribution:
        """SB3's distribution for the actor's latent: Categorical over logits, or a diagonal Gaussian with the
        state-independent ``log_std`` (each member's)."""
        out = self.policy.action_net(latent_pi)
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        return Normal(out, torch.ones_like(out) * self.policy.log_std.exp().unsqueeze(1), validate_args=False)

    def _log_prob(self, dist: Distribution, actions: torch.Tensor) -> torch.Tensor:
        log_prob = dist.log_prob(actions)
        return log_prob if self.discrete else log_prob.sum(-1)

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs): (K, B)."""
        return self.policy.value_net(self._latents(obs)[1]).squeeze(-1)

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values, log-probabilities and entropies of ``actions``, each (K, B)
        (``ActorCriticPolicy.evaluate_actions``)."""
        latent_pi, latent_vf = self._latents(obs)
        dist = self.distribution(latent_pi)
        entropy = dist.entropy() if self.discrete else dist.entropy().sum(-1)
        return self.policy.value_net(latent_vf).squeeze(-1), self._log_prob(dist, actions), entropy

    def _draw(self, steps: int) -> torch.Tensor:
        """The random numbers of ``steps`` env steps' actions, each member's from its own generator (one call per
        member a rollout): uniforms (T, K, N) to sample a Categorical, standard normals (T, K, N, A) for a Gaussian."""
        if self.discrete:
            draws = [torch.rand(steps, self.n_envs, generator=g, device=self.device) for g in self.generators]
        else:
            shape = (steps, self.n_envs, *self.first.action_space.shape)
            draws = [torch.randn(shape, generator=g, device=self.device, dtype=self.dtype) for g in self.generators]
        return torch.stack(draws, dim=1)

    @torch.no_grad()
    def _act(self, obs: torch.Tensor, draw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions sampled from the policy's distribution with ``draw`` (this step's random numbers: a uniform per
        env, inverse-CDF sampling; or standard normals, ``mean + std * draw``), their values and
        log-probabilities."""
        latent_pi, latent_vf = self._latents(obs)
        dist = self.distribution(latent_pi)
        if isinstance(dist, Categorical):
            below = dist.probs.cumsum(-1) < draw.unsqueeze(-1).to(dist.probs.dtype)
            actions = below.sum(-1).clamp(max=dist.probs.shape[-1] - 1)
        else:
            actions = dist.mean + dist.stddev * draw
        return actions, self.policy.value_net(latent_vf).squeeze(-1), self._log_prob(dist, actions)

    def reset(self) -> None:
        """Start new episodes in every env (as SB3's ``learn`` does, a resumed run too)."""
        self.last_obs = torch.as_tensor(self.envs.reset(), device=self.device)
        self.last_starts = torch.ones(self.members, self.n_envs, device=self.device)

    def collect_rollout(self) -> None:
        """Fill the rollout buffer with ``n_steps`` steps of every env (``collect_rollouts``)."""
        started = time.perf_counter()
        self._collect()
        self.timings["rollout"] += time.perf_counter() - started

    def _collect(self) -> None:
        if self.last_obs is None:
            self.reset()
        assert self.last_obs is not None
        first, T = self.first, self.first.n_steps
        shape = (T, self.members, self.n_envs)
        kind = {"device": self.device, "dtype": self.dtype}
        buf = {
            "obs": torch.zeros(*shape, *self.last_obs.shape[2:], device=self.device, dtype=self.last_obs.dtype),
            "actions": torch.zeros(*shape, *(() if self.discrete else first.action_space.shape), **kind),
            "rewards": torch.zeros(*shape, **kind),
            "starts": torch.zeros(*shape, **kind),
            "values": torch.zeros(*shape, **kind),
            "log_probs": torch.zeros(*shape, **kind),
        }
        draws = self._draw(T)
        for step in range(T):
            actions, values, log_probs = self._act(self.last_obs, draws[step])
            env_actions = actions.cpu().numpy()
            if not self.discrete:
                env_actions = np.clip(env_actions, first.action_space.low, first.action_space.high)
            if self.check_data is not None:
                self.check_data("action", actions)
            started = time.perf_counter()
            obs, rewards, dones, ends = self.envs.step(env_actions)
            self.timings["env"] += time.perf_counter() - started
            self.num_timesteps += self.n_envs
            new_obs = torch.as_tensor(obs, device=self.device)
            reward = torch.as_tensor(rewards, device=self.device, dtype=self.dtype)
            if self.check_data is not None:
                self.check_data("observation", new_obs)
                self.check_data("reward", reward)
            self._episode_ends(ends, reward)
            if self.on_step is not None:
                self.on_step(self)
            buf["obs"][step] = self.last_obs
            buf["actions"][step] = actions
            buf["rewards"][step] = reward
            buf["starts"][step] = self.last_starts
            buf["values"][step] = values
            buf["log_probs"][step] = log_probs
            self.last_obs = new_obs
            self.last_starts = torch.as_tensor(dones, device=self.device, dtype=self.dtype)
        with torch.no_grad():
            last_values = self.values(self.last_obs)
        buf["advantages"], buf["returns"] = self.gae(buf, last_values, self.last_starts)
        self.buffer = buf

    def _episode_ends(self, ends: list[EpisodeEnd], reward: torch.Tensor) -> None:
        """Record finished episodes; bootstrap time-limit truncations with ``gamma * V(terminal observation)``."""
        cut = [end for end in ends if end.truncated]
        for end in ends:
            self.ep_info[end.member].append({"r": end.episode_return, "l": end.length})
        if not cut:
            return
        terminal = torch.zeros_like(self.last_obs)  # type: ignore[arg-type]
        for end in cut:
            terminal[end.member, end.env] = torch.as_tensor(end.terminal_observation)
        with torch.no_grad():
            values = self.values(terminal)
        for end in cut:
            reward[end.member, end.env] += self.first.gamma * values[end.member, end.env]

    def gae(
        self, buf: dict[str, torch.Tensor], last_values: torch.Tensor, dones: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE(lambda) advantages and TD(lambda) returns (``RolloutBuffer.compute_returns_and_advantage``)."""
        gamma, lam = self.first.gamma, self.first.gae_lambda
        values, rewards, starts = buf["values"], buf["rewards"], buf["starts"]
        advantages = torch.zeros_like(values)
        last_gae: torch.Tensor | float = 0.0
        for step in reversed(range(len(values))):
            if step == len(values) - 1:
                non_terminal, next_values = 1.0 - dones, last_values
            else:
                non_terminal, next_values = 1.0 - starts[step + 1], values[step + 1]
            delta = rewards[step] + gamma * next_values * non_terminal - values[step]
            last_gae = delta + gamma * lam * non_terminal * last_gae
            advantages[step] = last_gae
        return advantages, advantages + values

    def progress_remaining(self, total_timesteps: int) -> float:
        return 1.0 - float(self.num_timesteps) / float(total_timesteps)

    def train(self, progress: float, orders: Sequence[Sequence[torch.Tensor]] | None = None) -> list[dict[str, float]]:
        """One ``PPO.train()`` on the buffer for every member.

        :param progress: SB3's progress remaining (1 to 0), for the schedules
        :param orders: per epoch, each member's order of the buffer's N*T samples (default: each member's own
            random permutation, as SB3's ``np.random.permutation``)
        :return: per member, SB3's ``train/*`` figures (``learning_rate``, ``entropy_loss``,
            ``policy_gradient_loss``, ``value_loss``, ``approx_kl``, ``clip_fraction``, ``loss``,
            ``explained_variance``, ``std`` for a Box, ``clip_range``, ``clip_range_vf`` when set)
        """
        started = time.perf_counter()
        figures = self._train(progress, orders)
        self.timings["update"] += time.perf_counter() - started
        return figures

    def _train(self, progress: float, orders: Sequence[Sequence[torch.Tensor]] | None) -> list[dict[str, float]]:
        first, K = self.first, self.members
        self.policy.set_training_mode(True)
        lr = first.lr_schedule(progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        clip_range = first.clip_range(progress)
        clip_range_vf = first.clip_range_vf(progress) if first.clip_range_vf is not None else None
        flat = {k: self._flatten(v) for k, v in self.buffer.items()}  # (K, N*T, ...), env-major as SB3's
        size = flat["values"].shape[1]
        sums = {name: torch.zeros(K, dtype=torch.float64, device=self.device) for name in TRAIN_FIGURES}
        batches, loss = 0, torch.zeros(K)  # (the last minibatch's loss is logged)
        params = list(self.policy.parameters())
        for epoch in range(first.n_epochs):
            kl, kl_batches = torch.zeros(K, dtype=torch.float64, device=self.device), 0  # SB3 logs the last epoch's
            order = (
                torch.stack([torch.as_tensor(o) for o in orders[epoch]])
                if orders is not None
                else torch.stack([torch.randperm(size, generator=g) for g in self.order_generators])
            ).to(self.device)
            for start in range(0, size, first.batch_size):
                index = order[:, start : start + first.batch_size]
                batch = {
                    k: v.gather(1, index.view(*index.shape, *[1] * (v.dim() - 2)).expand(-1, -1, *v.shape[2:]))
                    for k, v in flat.items()
                }
                actions = batch["actions"].long() if self.discrete else batch["actions"]
                values, log_prob, entropy = self.evaluate_actions(batch["obs"], actions)
                advantages = batch["advantages"]
                if first.normalize_advantage and advantages.shape[1] > 1:
                    advantages = (advantages - advantages.mean(1, keepdim=True)) / (
                        advantages.std(1, keepdim=True) + 1e-8
                    )
                ratio = torch.exp(log_prob - batch["log_probs"])
                surrogate = torch.min(
                    advantages * ratio, advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
                )
                policy_loss = -surrogate.mean(1)
                if clip_range_vf is None:
                    values_pred = values
                else:
                    old = batch["values"]
                    values_pred = old + torch.clamp(values - old, -clip_range_vf, clip_range_vf)
                value_loss = ((batch["returns"] - values_pred) ** 2).mean(1)
                entropy_loss = -entropy.mean(1)
                loss = policy_loss + first.ent_coef * entropy_loss + first.vf_coef * value_loss
                with torch.no_grad():
                    log_ratio = log_prob - batch["log_probs"]
                    kl += ((torch.exp(log_ratio) - 1) - log_ratio).mean(1)
                    sums["clip_fraction"] += ((ratio - 1).abs() > clip_range).to(ratio.dtype).mean(1)
                    sums["policy_gradient_loss"] += policy_loss
                    sums["value_loss"] += value_loss
                    sums["entropy_loss"] += entropy_loss
                batches, kl_batches = batches + 1, kl_batches + 1
                self.optimizer.zero_grad()
                loss.sum().backward()
                clip_member_grad_norms(params, first.max_grad_norm)
                self.optimizer.step()
            self.n_updates += 1
            sums["approx_kl"] = kl * batches / kl_batches  # divided by batches below
        self.policy.set_training_mode(False)
        values_all, returns_all = flat["values"].cpu().numpy(), flat["returns"].cpu().numpy()
        out = []
        for k in range(K):
            figures = {"learning_rate": lr}
            figures.update({name: float(sums[name][k]) / batches for name in TRAIN_FIGURES})
            figures["loss"] = float(loss[k].detach())
            var = np.var(returns_all[k])
            figures["explained_variance"] = (
                float("nan") if var == 0 else float(1 - np.var(returns_all[k] - values_all[k]) / var)
            )
            if not self.discrete:
                figures["std"] = float(self.policy.log_std[k].detach().exp().mean())
            figures["clip_range"] = clip_range
            if clip_range_vf is not None:
                figures["clip_range_vf"] = clip_range_vf
            out.append(figures)
        return out

    def _flatten(self, t: torch.Tensor) -> torch.Tensor:
        """(T, K, N, ...) -> (K, N*T, ...), env-major (SB3's ``swap_and_flatten``)."""
        return t.movedim(0, 2).reshape(t.shape[1], -1, *t.shape[3:])

    # Each member's state as a single run's: the policy's state_dict, the optimizer's, the methods'
    def member_policy_state(self, member: int) -> dict[str, torch.Tensor]:
        return member_state(self.policy.state_dict(), member)

    def member_optimizer_state(self, member: int) -> dict[str, Any]:
        state = self.optimizer.state_dict()
        return member_optimizer_state(state, member, state["param_groups"])

    def load_members(
        self,
        policies: Sequence[dict[str, torch.Tensor]],
        optimizers: Sequence[dict[str, Any]],
        methods: Sequence[dict[str, dict[str, Any]]],
    ) -> None:
        """Load every member's state (a single run's: policy and optimizer state_dicts, per target the method's)."""
        self.policy.load_state_dict(stack_states(policies))
        groups = self.optimizer.state_dict()["param_groups"]
        self.optimizer.load_state_dict(stack_optimizer_states(list(optimizers), groups))
        for k, states in enumerate(methods):
            for target, method in self.methods.items():
                method.load_state_dict(states[target], k)


@torch.no_grad()
def clip_member_grad_norms(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` for each member on its own: every gradient of member k scaled by
    ``min(1, max_norm / (norm_k + 1e-6))``, ``norm_k`` the L2 norm of all of member k's gradients."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), 2, dim=1) for g in grads], dim=1)  # (K, P)
    total = torch.linalg.vector_norm(norms, 2, dim=1)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *[1] * (g.dim() - 1)).to(g.dtype))


def keep_freed_memory() -> None:
    """Keep memory that torch frees in the process for reuse, instead of giving it back to the OS (glibc's
    ``mallopt``; elsewhere nothing happens). A batched network's activations are megabytes each, allocated and
    freed at every update; given back and touched again, their pages fault in at about ten times the cost of the
    arithmetic on them (measured: a ReLU of 16 x 256 x 64 floats took 380 us in training instead of 30 us)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: blocks below it come from the heap
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_top_pad, 64 << 20)
