"""`import skrmt` and `import skrmt.scale_out` leave dask and distributed out of sys.modules."""

import subprocess
import sys


def test_import_leaves_dask_out():
    code = (
        "import sys, skrmt, skrmt.scale_out; "
        "print(','.join(m for m in ('dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
