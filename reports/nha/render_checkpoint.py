"""Render an NHA checkpoint's val frames into an outputs folder (the tracked expression and pose of
the val frames, no test-time fit, when the checkpoint has none), e.g. for the CPU probes of
`stage1_cpu_probe.py`, so that `error_by_region.py` and `signed_error_by_region.py` can read them.
Run as: python reports/nha/render_checkpoint.py SUBJECT_DIR CHECKPOINT_DIR OVERRIDES_JSON OUTPUTS_DIR"""
import json
import sys
from pathlib import Path

from nha_bench.datasets.format import Subject
from nha_bench.method import Sequence
from nha_bench.methods.nha import Nha
from nha_bench.outputs import write_outputs

subject = Subject(sys.argv[1])
method = Nha.fitted(subject, Path(sys.argv[2]), json.loads(sys.argv[3]))
write_outputs(Path(sys.argv[4]), method.render(Sequence(subject, "val")))
