"""A search space in the Hydra Optuna sweeper's syntax -> Optuna distributions, and a trial's values back
to overrides. One entry per override key:

    optimizer.lr: tag(log, interval(1e-4, 0.1))       # float, log-uniform
    model.width: tag(log, int(interval(16, 512)))     # int, log-uniform
    model.depth: range(1, 4)                          # int 1..3 (Hydra's range excludes its end)
    optimizer.name: choice(sgd, adam)                 # categorical
"""

from __future__ import annotations

from dlx.errors import DlxError


def flat(node, prefix: str = "") -> dict[str, str]:
    """{key: expression} from a mapping whose keys may be dotted ('optimizer.lr') or nested
    ({optimizer: {lr: ...}}, what ``tune.space.optimizer.lr=...`` on a command line makes)."""
    out: dict[str, str] = {}
    for k, v in (node or {}).items():
        key = f"{prefix}{k}"
        if hasattr(v, "items"):
            out.update(flat(v, key + "."))
        else:
            out[key] = str(v)
    return out


def distributions(space: dict[str, str]) -> dict:
    """{override key: optuna distribution}; a bad expression is one clear DlxError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not space:
        raise DlxError("tune.space is empty: give at least one key to search (e.g. "
                       "tune.space.optimizer.lr='tag(log, interval(1e-4, 0.1))')")
    parser = OverridesParser.create()
    out = {}
    for key, text in space.items():
        try:
            value = parser.parse_override(f"{key}={text}").value()
        except Exception as err:
            raise DlxError(f"tune.space.{key}: cannot read {text!r} ({' '.join(str(err).split())[:120]}); "
                           "write choice(a, b), range(1, 4), interval(0.1, 0.9) or "
                           "tag(log, interval(1e-4, 0.1))") from None
        log = "log" in getattr(value, "tags", set())
        if isinstance(value, ChoiceSweep):
            out[key] = CategoricalDistribution(list(value.list))
        elif isinstance(value, RangeSweep):
            ints = all(isinstance(v, int) for v in (value.start, value.stop, value.step))
            if not ints:
                raise DlxError(f"tune.space.{key}: range() takes integers; use interval() for floats")
            if value.stop - value.step < value.start:
                raise DlxError(f"tune.space.{key}: {text} is empty")
            out[key] = IntDistribution(int(value.start), int(value.stop) - int(value.step),
                                       step=int(value.step), log=log)
        elif isinstance(value, IntervalSweep):
            if value.start >= value.end or (log and value.start <= 0):
                raise DlxError(f"tune.space.{key}: {text} needs low < high" + (" and low > 0 (log)" if log
                                                                                else ""))
            if isinstance(value.start, int) and isinstance(value.end, int):
                out[key] = IntDistribution(value.start, value.end, log=log)
            else:
                out[key] = FloatDistribution(float(value.start), float(value.end), log=log)
        else:
            raise DlxError(f"tune.space.{key}: {text!r} is one value, not a range to search: write "
                           f"choice(...), range(...) or interval(...), or set {key} outside tune.space")
    return out


def overrides(params: dict) -> list[str]:
    """A trial's values as Hydra overrides (strings quoted so they parse back to themselves)."""
    from dlx.config import quote

    def fmt(v) -> str:
        if isinstance(v, bool) or v is None:
            return "true" if v is True else "false" if v is False else "null"
        if isinstance(v, (int, float)):
            return repr(v)
        return quote(str(v))

    return [f"{k}={fmt(v)}" for k, v in params.items()]
