"""Track a copy of the tiny fixture and keep the headmodel outputs in /tmp/geo/subject_f1."""
import shutil
from pathlib import Path
import torch
from nha_bench.datasets import Subject
from nha_bench.evaluation import evaluate_outputs
from nha_bench.method import Sequence
from nha_bench.methods.headmodel import TrackedHeadModel
from nha_bench.outputs import write_outputs
from nha_bench.tracking import TrackerConfig, track_subject
torch.manual_seed(0)
src = Path("nha_bench/datasets/fixtures/tiny/subject_f1"); root = Path("/tmp/geo/subject_f1")
shutil.rmtree(root, ignore_errors=True); shutil.copytree(src, root); (root / "tracking.npz").unlink(missing_ok=True)
track_subject(root, device="cpu", config=TrackerConfig.preset("tiny"), progress=False)
s = Subject(root); m = TrackedHeadModel(); m.setup(Sequence(s, "train"), "tiny", "cpu", 0)
write_outputs(root / "outputs", m.render(Sequence(s, "val")))
res, sk = evaluate_outputs(root / "outputs", s, "val")
for r in res: print(r.spec.name, r.value, r.extra)
