"""What Hydra itself would refuse on a command line, said in one line (exit 2) before anything heavy is imported.

`command_line_error` composes the command line's overrides the way Hydra will, so a misspelt key, an unknown
experiment or a malformed override is one sentence with a did-you-mean, not Hydra's multi-line report. It imports
Hydra and OmegaConf only (infogan_pl.config): an entry point calls it first and loads torch and Lightning after.
"""

from __future__ import annotations

import difflib
import re
import sys

from omegaconf import OmegaConf

from infogan_pl.config import compose

EXIT_CONFIG = 2  # a configuration or input the user must change; nothing was written
HELP_FLAGS = ("--help", "-h", "--hydra-help")


_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "--experimental-rerun"}
_OWN_CONFIG_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd"}


def dotted_keys(node, prefix: str = "") -> list[str]:
    """Every key of a nested dict, dotted (`model.lr_d`), inner nodes included."""
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in [f"{prefix}{key}", *dotted_keys(value, f"{prefix}{key}.")]]
    return []


def command_line_error(config_name: str, argv: list[str]) -> str | None:
    """None if Hydra can compose `config_name` with argv's overrides, else one sentence saying what to change.

    A sweep's overrides are tried with their first value (ranges and intervals, which only a sweeper expands, and
    `hydra.*` keys are left to Hydra)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    if any(a in _OWN_CONFIG_FLAGS or a.split("=")[0] in _OWN_CONFIG_FLAGS for a in argv):
        return None
    args = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] not in _FLAGS_WITH_VALUE)]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as err:
        return f"{str(err).splitlines()[0]} (an override is key=value; quote values with spaces)."
    overrides = []
    for o in parsed:
        if o.key_or_group.startswith("hydra"):
            continue
        if not o.is_sweep_override():
            overrides.append(o.input_line)
        elif o.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
            first = next(iter(o.sweep_string_iterator()), None)
            if first is not None:
                overrides.append(f"{o.get_key_element()}={first}")
    try:
        compose(config_name, overrides)
        return None
    except MissingConfigException as err:
        group, _, name = (err.missing_cfg_file or "").rpartition("/")
        if not group:
            return str(err).splitlines()[0] + "."
        near = difflib.get_close_matches(name, list(err.options or []), n=1)
        hint = f"did you mean {group}={near[0]}?" if near else f"choose from: {', '.join(err.options or [])}"
        return f"{group}={name}: there is no such {group} config ({hint})."
    except (HydraException, OmegaConfBaseException) as err:
        message = str(err)
        match = re.search(r"Could not (?:override|append to|delete from) '([^']+)'", message)
        if not match:
            return message.strip().splitlines()[0]
        key = match.group(1)
        try:  # the keys this configuration has, to suggest the nearest
            rest = [o for o in overrides if o.lstrip("+~").split("=")[0] != key]
            keys = dotted_keys(OmegaConf.to_container(compose(config_name, rest), resolve=False))
        except Exception:
            keys = []
        near = difflib.get_close_matches(key, keys, n=1)
        if near:
            return f"{key} is not a key of the configuration (did you mean {near[0]}?)."
        return (
            f"{key} is not a key of the configuration: check the spelling (`--cfg job` prints every key), "
            f"or add a new key with +{key}=..."
        )


def exit_on_command_line_error(config_name: str, argv: list[str] | None = None) -> None:
    """For `python -m` entry points built on hydra.main: print command_line_error's line and exit 2 (nothing to check
    when the user asks for help)."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in HELP_FLAGS for a in argv):
        return
    message = command_line_error(config_name, argv)
    if message:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
