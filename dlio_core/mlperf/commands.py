"""What each ``dl-driver mlperf`` command does once its flags parse: validate, then size, show, or launch.

Validation happens before anything runs (and is all ``--dry-run`` does besides printing the command): the
combination of flags, every ``--params`` override against the CLOSED/OPEN lists, the checkpointing process
counts, the workload config with every override applied, the hosts and slots, and for a training run the
dataset against the datasize minimum.

Example:
    >>> from dlio_core.mlperf.cli import build_parser
    >>> args = build_parser().parse_args(["whatif", "training", "unet3d", "datasize", "--accelerator-type", "h100",
    ...     "--max-accelerators", "4", "--client-host-memory-in-gb", "64", "--hosts", "node9", "--dry-run"])
    >>> dispatch(args, say=lambda line: None)
    0
"""

from __future__ import annotations

import os
import re
import socket
import sys
from typing import Any, Callable

from ..config import ConfigError, bundled_workloads, load_config
from .command import MpiLaunch, find_binary, mpi_prefix, override_args, parse_hosts, shell_line
from . import gates
from .errors import RulesError, UsageError
from .datasize import checkpoint_datasize, training_datasize
from .execute import RunPlan, execute, write_metadata
from .layout import reserve_run_dir, run_parent
from .models import LLAMA3, checkpoint_workload, datagen_workload, training_workload
from .rules import (Label, category, check_checkpoint_counts, checkpoint_process_overrides, enforce,
                    label_params)

__all__ = ["dispatch"]

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _usage(message: str) -> Exception:
    return UsageError(message)


def _params(args: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (p for group in (args.params or ()) for p in group):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _usage(f"--params: {item!r} is not KEY=VALUE")
        key = key.lstrip("+")
        out[key[len("workload."):] if key.startswith("workload.") else key] = value
    return out


def _measured_memory(hosts: list[str]) -> int | None:
    """This host's memory when every client is this host; ``None`` when some are remote (not measured)."""
    from ..report.host import host_memory_bytes

    names = _LOCAL_HOSTS | {socket.gethostname(), socket.getfqdn()}
    if all(h.rpartition(":")[0] in names if ":" in h else h in names for h in hosts):
        return host_memory_bytes() or None
    return None


_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _check_common(args: Any) -> None:
    if args.loops < 1:
        raise _usage(f"--loops must be at least 1, got {args.loops}")
    if args.allow_invalid_params and args.mode == "closed":
        raise RulesError("--allow-invalid-params is only allowed in open and whatif, not in closed")
    if args.exec_type != "mpi":
        raise _usage(f"--exec-type {args.exec_type} is not supported by dl-driver; use --exec-type mpi (the default)")
    needs_system = not (args.benchmark == "checkpointing" and args.command == "datasize")
    if not args.systemname:
        if args.mode != "whatif" and needs_system:
            raise _usage(f"--systemname is required in {args.mode} (it names the results folder); "
                         "or set $MLPSTORAGE_SYSTEMNAME")
        args.systemname = socket.gethostname()
    args.orgname = args.orgname or args.systemname
    for flag, value in (("--systemname", args.systemname), ("--orgname", args.orgname)):
        if value in (".", "..") or not _SAFE_NAME.match(value):  # one path segment of the results tree
            raise _usage(f"{flag} {value!r} must be letters, digits, '.', '_' or '-' (it names a folder)")
    if not args.results_dir:
        if args.command in ("run", "configview"):
            raise _usage(f"--results-dir is required for {args.command}; or set $MLPSTORAGE_RESULTS_DIR")
        args.results_dir = "mlperf_results"
    if getattr(args, "o_direct", False) and args.storage == "object":
        raise _usage("--o-direct cannot be combined with object storage (O_DIRECT is for local files)")
    if getattr(args, "num_client_hosts", None) is not None and args.num_client_hosts < 1:
        raise _usage(f"--num-client-hosts must be at least 1, got {args.num_client_hosts}")


def _dl_driver_binary(path: str | None) -> str | None:
    """``--dlio-bin-path``: mlpstorage's folder holding the binary (``<DIR>/dl-driver``), or the executable."""
    if path is None:
        return None
    exe = os.path.join(path, "dl-driver") if os.path.isdir(path) else path
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise _usage(f"--dlio-bin-path {path}: no dl-driver executable there (give the folder holding it)")
    return exe


def _cluster(args: Any, hosts: list[str]) -> dict[str, Any]:
    from ..report.host import host_memory_bytes

    return {"hosts": hosts, "num_client_hosts": _num_hosts(args, hosts),
            "client_host_memory_in_gb": getattr(args, "client_host_memory_in_gb", None),
            "measured_memory_bytes": _measured_memory(hosts), "total_memory_bytes": _total_memory(args, hosts),
            "total_cores": os.cpu_count() if _measured_memory(hosts) else None,
            "launcher": {"hostname": socket.gethostname(), "cpu_count": os.cpu_count(),
                         "memory_bytes": host_memory_bytes()}}


def _args_record(args: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if not k.startswith("_")}


def _storage_overrides(args: Any, model: str) -> dict[str, Any]:
    """``dataset.data_folder`` (and the S3 keys for object storage) from ``--data-dir``."""
    data_dir = args.data_dir.rstrip("/")
    if args.storage == "object":
        uri = data_dir if "://" in data_dir else f"s3://{data_dir}"
        bucket = uri.split("://", 1)[1].split("/", 1)[0]
        folder = uri if uri.endswith("/" + model) else f"{uri}/{model}"
        return {"storage.storage_type": "s3", "storage.storage_root": bucket, "dataset.data_folder": folder}
    folder = data_dir if os.path.basename(data_dir) == model else os.path.join(data_dir, model)
    return {"dataset.data_folder": folder}


def _launch(args: Any, hosts: list[str], num_processes: int) -> MpiLaunch:
    """The launch, checked now (bad slots, a spelling the launcher lacks): a ``LaunchError`` naming the flag."""
    from .launchers import flavor_of

    binary = find_binary(args.mpi_bin)
    launch = MpiLaunch(args.mpi_bin, tuple(hosts) if args.hosts else (), num_processes, args.oversubscribe,
                       args.allow_run_as_root, tuple(args.mpi_params or ()), mpi_btl=args.mpi_btl,
                       flavor=flavor_of(args.mpi_bin, binary))
    mpi_prefix(launch, binary=binary)
    return launch


def _num_hosts(args: Any, hosts: list[str]) -> int:
    """``--num-client-hosts``, else the hosts given, else the batch allocation's node count, else 1."""
    from .launchers import allocation_node_count

    given = getattr(args, "num_client_hosts", None)
    if given:
        return given
    return len(hosts) if args.hosts else (allocation_node_count() or 1)


def _total_memory(args: Any, hosts: list[str]) -> int | None:
    """The clients' memory as mlpstorage's ``system_info`` has it: the larger of declared and measured."""
    per_host = getattr(args, "client_host_memory_in_gb", None)
    declared = int(per_host * 2**30) * _num_hosts(args, hosts) if per_host else 0
    return max(declared, _measured_memory(hosts) or 0) or None


def _plan(args: Any, *, benchmark: str, model: str, workload: str, subcommand: str, overrides: dict[str, Any],
          user: dict[str, str], labels: list, run_category: Label, cfg: Any, hosts: list[str],
          num_processes: int) -> RunPlan:
    parent = run_parent(args.results_dir, args.mode, args.orgname, args.systemname, benchmark, model, args.command)
    return RunPlan(benchmark=benchmark, mode=args.mode, model=model, command=args.command, workload=workload,
                   subcommand=subcommand, overrides=overrides, launch=_launch(args, hosts, num_processes),
                   parent=os.path.abspath(parent), user_params=user,
                   labels=[{"key": p.key, "value": p.value, "label": p.label.value, "reason": p.reason}
                           for p in labels],
                   category=run_category.value, args=_args_record(args), parameters=cfg.to_dict(redact=True),
                   cluster=_cluster(args, hosts), dl_driver_bin=_dl_driver_binary(args.dlio_bin_path))


def _show_config(cfg: Any, labels: list, say: Callable[[str], None]) -> int:
    import yaml

    say(yaml.safe_dump({"workload": cfg.to_dict(redact=True)}, sort_keys=False).rstrip("\n"))
    for p in labels:
        print(p.line(), file=sys.stderr)
    return 0


def _training(args: Any, say: Callable[[str], None]) -> int:
    model, command = args.model, args.command
    user = _params(args)
    labels = label_params(user, "training", model)
    enforce(args.mode, labels, allow_invalid=args.allow_invalid_params)
    hosts = parse_hosts(args.hosts)
    if command == "datagen":
        workload = datagen_workload(model)
    else:
        workload = training_workload(model, args.accelerator_type)
    if workload not in bundled_workloads():
        what = "a datagen workload" if command == "datagen" else f"a workload for {args.accelerator_type}"
        raise _usage(f"--accelerator-type: {model} has no {what} (no bundled {workload})")
    tool: dict[str, Any] = {}
    if args.data_dir:
        tool.update(_storage_overrides(args, model))
    elif command in ("datagen", "run"):
        raise _usage(f"--data-dir is required for training {command}")
    if args.checkpoint_folder:
        tool["checkpoint.checkpoint_folder"] = args.checkpoint_folder
    if getattr(args, "o_direct", False):  # v3: every training I/O with O_DIRECT, whatever the format
        tool["storage.storage_type"] = "direct_fs"
    overrides = {**tool, **user}
    cfg = load_config(workload, override_args(overrides))
    memory_gb = getattr(args, "client_host_memory_in_gb", None)
    num_hosts = _num_hosts(args, hosts)
    if command == "datasize":
        return _training_datasize(args, cfg, hosts, num_hosts, user, say)
    if command == "configview":
        return _show_config(cfg, labels, say)
    if command == "run" and cfg.workflow.checkpoint and "checkpoint.checkpoint_folder" not in overrides:
        raise _usage(f"--checkpoint-folder is required: {workload} writes a checkpoint")
    num_processes = args.num_processes if command == "datagen" else args.num_accelerators
    if num_processes < 1:
        flag = "--num-processes" if command == "datagen" else "--num-accelerators"
        raise _usage(f"{flag} must be at least 1, got {num_processes}")
    plan = _plan(args, benchmark="training", model=model, workload=workload,
                 subcommand="generate" if command == "datagen" else "run", overrides=overrides, user=user,
                 labels=labels, run_category=category(labels), cfg=cfg, hosts=hosts, num_processes=num_processes)
    if command == "run":  # last: the one check that may only warn
        _check_dataset(args, cfg, hosts, num_hosts, memory_gb)
    if command == "datagen" and args.storage == "file":
        ds = cfg.dataset
        gates.capacity(args.mode, ds.data_folder, int(ds.num_files_train * ds.num_samples_per_file *
                                                      ds.record_length_bytes), "the dataset")
        if not args.dry_run:
            os.makedirs(overrides["dataset.data_folder"], exist_ok=True)
    return execute(plan, loops=args.loops, dry_run=args.dry_run, say=say)


def _check_dataset(args: Any, cfg: Any, hosts: list[str], num_hosts: int, memory_gb: float) -> None:
    """The dataset-size and dataset-present gates (closed refuses, others warn), then fs-separation."""
    need = training_datasize(cfg, max_accelerators=args.num_accelerators, client_host_memory_gb=memory_gb,
                             num_client_hosts=num_hosts, measured_memory_bytes=_measured_memory(hosts))
    have = cfg.dataset.num_files_train
    if have < need.num_files_train:
        gates.refuse_or_warn(args.mode, "dataset-size", (
            f"dataset.num_files_train {have:,} is below the datasize minimum {need.num_files_train:,} for "
            f"{args.num_accelerators} accelerators and {need.memory_bytes / 2**30:,.1f} GiB of client memory "
            f"(set by {need.decided_by}; see 'datasize')"))
    if args.storage == "file":
        gates.dataset_present(args.mode, cfg.dataset.data_folder, have)
        gates.fs_separation(args.mode, cfg.dataset.data_folder, args.results_dir)


def _training_datasize(args: Any, cfg: Any, hosts: list[str], num_hosts: int, user: dict[str, str],
                       say: Callable[[str], None]) -> int:
    size = training_datasize(cfg, max_accelerators=args.max_accelerators,
                             client_host_memory_gb=args.client_host_memory_in_gb, num_client_hosts=num_hosts,
                             measured_memory_bytes=_measured_memory(hosts))
    say(f"datasize: {args.model} on up to {args.max_accelerators} x {args.accelerator_type}, "
        f"{num_hosts} client host(s) x {args.client_host_memory_in_gb:g} GiB")
    for line in size.describe():
        say(f"  {line}")
    params = {k: v for k, v in user.items() if k != "dataset.num_files_train"}  # e.g. the user's subfolders
    params["dataset.num_files_train"] = size.num_files_train
    gen = ["dl-driver", "mlperf", args.mode, "training", args.model, "datagen", args.storage,
           "--num-processes", str(args.max_accelerators), "--data-dir", args.data_dir or "<DATA_DIR>",
           "--systemname", args.systemname]
    if args.hosts:
        gen += ["--hosts", *parse_hosts(args.hosts)]
    gen += ["--params", *(f"{k}={v}" for k, v in params.items())]
    say("Generate the dataset with (--num-processes is --max-accelerators; adjust it to your clients):")
    say(f"  {shell_line(gen)}")
    if not args.dry_run:
        parent = run_parent(args.results_dir, args.mode, args.orgname, args.systemname, "training", args.model,
                            "datasize")
        folder, stamp = reserve_run_dir(parent)
        write_metadata(folder, "training", stamp, {
            "benchmark_type": "training", "mode": args.mode, "model": args.model, "command": "datasize",
            "run_datetime": stamp, "args": _args_record(args), "override_parameters": user,
            "accelerator_type": args.accelerator_type, "max_accelerators": args.max_accelerators,
            "client_host_memory_in_gb": args.client_host_memory_in_gb, "num_client_hosts": num_hosts,
            "data_dir": args.data_dir, "num_files_train": size.num_files_train,
            "num_subfolders_train": size.num_subfolders_train, "total_disk_bytes": size.total_disk_bytes,
            "files_by_memory": size.files_by_memory, "files_by_steps": size.files_by_steps,
            "memory_bytes": size.memory_bytes, "measured_memory_bytes": size.measured_memory_bytes,
            "datagen_command": shell_line(gen), "cluster_information": _cluster(args, hosts)})
        say(f"  recorded in {folder}")
    return 0


def _checkpointing(args: Any, say: Callable[[str], None]) -> int:
    from ..checkpoint import CheckpointPlan

    model, n = args.model, args.num_processes
    if args.command == "run" and not args.checkpoint_folder:
        raise _usage("--checkpoint-folder is required for checkpointing run; or set $MLPSTORAGE_CHECKPOINT_FOLDER")
    workload = checkpoint_workload(model)
    user = _params(args)
    labels = label_params(user, "checkpointing", model)
    enforce(args.mode, labels, allow_invalid=args.allow_invalid_params)
    counts = check_checkpoint_counts(args.mode, model, n, args.num_checkpoints_read, args.num_checkpoints_write,
                                     allow_invalid=args.allow_invalid_params)
    subset = checkpoint_process_overrides(model, n)
    if args.command == "datasize":
        try:
            exact = CheckpointPlan.from_config(load_config(workload, override_args(subset)), world=n).total_bytes
        except ConfigError as exc:  # a layout DLIO refuses (e.g. not a multiple of TP x PP): no exact figure
            exact = None
            say(f"note: {exc}")
        if subset:
            say(f"subset mode: {n} of the {LLAMA3[model].closed_processes} processes of the full job; the table "
                "below divides by the processes given, as mlpstorage does, the exact figure is the subset's")
        for line in checkpoint_datasize(model, n, exact_total_bytes=exact).describe():
            say(line)
        return 0
    hosts = parse_hosts(args.hosts)
    tool: dict[str, Any] = {**subset, "checkpoint.num_checkpoints_read": args.num_checkpoints_read,
                            "checkpoint.num_checkpoints_write": args.num_checkpoints_write}
    if args.checkpoint_folder:
        folder = args.checkpoint_folder.rstrip("/")
        if args.storage == "object":
            folder = folder if "://" in folder else f"s3://{folder}"
            tool.update({"storage.storage_type": "s3", "storage.storage_root": folder.split("://", 1)[1].split("/")[0]})
        tool["checkpoint.checkpoint_folder"] = f"{folder}/{model}"
    if getattr(args, "o_direct", False):
        tool["storage.storage_type"] = "direct_fs"
    overrides = {**tool, **user}
    cfg = load_config(workload, override_args(overrides))
    size = CheckpointPlan.from_config(cfg, world=n).total_bytes  # a layout DLIO refuses: a ConfigError
    if args.command == "configview":
        return _show_config(cfg, labels, say)
    if args.storage == "file":
        folder = cfg.checkpoint.checkpoint_folder
        gates.capacity(args.mode, folder, size * args.num_checkpoints_write,
                       f"{args.num_checkpoints_write} checkpoints of {model}")
        gates.fs_separation(args.mode, folder, args.results_dir)
    worst = max((category(labels), counts), key=[Label.CLOSED, Label.OPEN, Label.INVALID].index)
    plan = _plan(args, benchmark="checkpointing", model=model, workload=workload, subcommand="run",
                 overrides=overrides, user=user, labels=labels, run_category=worst, cfg=cfg, hosts=hosts,
                 num_processes=n)
    return execute(plan, loops=args.loops, dry_run=args.dry_run, say=say)


def dispatch(args: Any, *, say: Callable[[str], None] = print) -> int:
    """Run the parsed command; returns the exit code (errors are raised, one line each)."""
    if args.mode == "reportgen":
        from .reportgen import generate_reports

        return generate_reports(args.results_dir, output_dir=args.output_dir, say=say)
    _check_common(args)
    if args.benchmark == "training":
        return _training(args, say)
    return _checkpointing(args, say)
