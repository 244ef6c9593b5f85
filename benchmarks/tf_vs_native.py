"""tf.data loader vs the native engine on the same page-cached files (samples/s; no compute).

Run: ``python benchmarks/tf_vs_native.py`` (needs tensorflow). Prints one line per loader.
"""
import os, sys, tempfile, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.integration._tfdata import write_tfrecords
from dlio_core.config import load_config
from dlio_core.generate import generate_dataset
from dlio_core.runner import run
N, SPF, DIM, B = 256, 8, 128, 16
base = tempfile.mkdtemp()
def ov(folder, fmt, loader):
    return [f"++workload.dataset.data_folder={folder}", f"++workload.dataset.format={fmt}", f"++workload.dataset.num_files_train={N}",
            "++workload.dataset.num_files_eval=0", f"++workload.dataset.num_samples_per_file={SPF}",
            f"++workload.dataset.record_length_bytes={DIM*DIM}", "++workload.dataset.num_subfolders_train=0",
            f"++workload.reader.batch_size={B}", "++workload.reader.read_threads=2", f"++workload.reader.data_loader={loader}",
            "++workload.train.epochs=3", "++workload.train.computation_time=0", "++workload.workflow.evaluation=False",
            f"++hydra.run.dir={tempfile.mkdtemp()}"]
warm: dict[str, float] = {}
npz = base + "/npz"; generate_dataset(load_config("default", ov(npz, "npz", "native")), progress=False)
tfr = base + "/tfr"; write_tfrecords(tfr, N, SPF, DIM)
for name, folder, fmt, loader in [("npz native", npz, "npz", "native"), ("npz tensorflow (core path)", npz, "npz", "tensorflow"),
                                  ("tfrecord tensorflow (native TFRecordDataset)", tfr, "tfrecord", "tensorflow")]:
    r = run(load_config("default", ov(folder, fmt, loader)), quiet=True)
    m = r.summary["metric"]
    warm[name] = sorted(m["train_throughput_samples_per_second"][1:])[0]  # slowest warm epoch
    print(f"{name:48s} samples/s per epoch {[round(x) for x in m['train_throughput_samples_per_second']]}  MiB/s {[round(x,1) for x in m['train_io_mean_MB_per_second']] if isinstance(m['train_io_mean_MB_per_second'], list) else round(m['train_io_mean_MB_per_second'],1)}")
native_warm = warm["npz native"]
print(f"tensorflow loader / native ratio, npz (core path): {warm['npz tensorflow (core path)'] / native_warm:.3f}")
print(f"tensorflow loader / native ratio, tfrecord (TFRecordDataset) vs native npz: "
      f"{warm['tfrecord tensorflow (native TFRecordDataset)'] / native_warm:.3f}")
import dlio_tf
for name, folder, fmt in [("npz make_dataset", npz, "npz"), ("tfrecord make_dataset", tfr, "tfrecord")]:
    ds = dlio_tf.make_dataset("default", overrides=ov(folder, fmt, "tensorflow"))
    for _ in ds: pass
    t = time.perf_counter(); n = sum(int(b["image"].shape[0]) for b in ds); dt = time.perf_counter() - t
    print(f"{name:48s} plain iteration {n/dt:,.0f} samples/s")
