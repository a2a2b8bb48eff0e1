"""The kiosk's screen (PySide6): it renders engine events and sends commands; it holds no model code.

- ``app.py``: ``run_app(config, windowed)``, what ``kiosk`` starts: the window, the engine loading behind
  it, telemetry, systemd notifications.
- ``window.py``: ``KioskWindow``, the visitor screen and its states (attract, listening, thinking,
  speaking, not understood, still there), built over an engine (a loaded one in the tests).
- ``face_view.py``: the stage, painting the face animator's frames (or the still portrait).
- ``widgets.py``: captions, question chips, the talk button, the level meter, the "Still there?" overlay.
- ``ops_panel.py`` / ``ops_model.py``: the technician's panel and what it shows; ``resources.py``: where
  its CPU, memory and GPU numbers come from; ``selftest.py``: the self-test it runs.
- ``bridge.py``: engine events (worker threads) into the GUI thread; ``theme.py``: colours, type, style.
"""
