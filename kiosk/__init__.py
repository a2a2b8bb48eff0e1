"""Docent: an offline talking exhibit guide for museum kiosks."""

import os

# onnxruntime (1.32) embeds Microsoft's 1DS usage telemetry: on import it writes a device id and an
# SQLite queue of usage events under ~/.cache/Microsoft/DeveloperTools/.onnxruntime, and the library
# carries an upload address.  `disable_telemetry_events()` comes too late (the files exist by then);
# its environment switch, read at import, stops both.  Set here, before any kiosk module can import
# onnxruntime; a museum that wants it anyway can still set ORT_DISABLE_TELEMETRY=0 itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
