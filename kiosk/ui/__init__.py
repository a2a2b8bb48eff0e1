"""The kiosk's screen (PySide6): it renders engine events and sends commands; it holds no model code.

- ``app.py``: ``run_app(config, windowed)``, what ``kiosk`` starts: the window over
  :func:`kiosk.compose.compose`'s engine, telemetry and sampler, the models loading behind it, systemd.
- ``screen_model.py``: the visitor screen's state machine without Qt (``screen_text.py``: what it says;
  ``caption_log.py``: the conversation as captions).
- ``window.py``: ``KioskWindow``, which feeds the model engine events, taps and the clock and renders it;
  ``screen_layout.py``: its widgets and their places; ``captions.py``, ``chips.py``, ``keyboard.py``,
  ``widgets.py`` (talk button, meter, pill, "Still there?", hot corner), ``face_view.py`` (the stage);
  ``listening.py``: the microphone's commands; ``visitor_commands.py``: the visitor's (ask, stop, type,
  larger text, high contrast, a new conversation).
- ``admin.py``: the technician's keys, the ops panel's actions and the worker threads;
  ``ops_panel.py`` / ``ops_widgets.py`` / ``ops_model.py``: the panel, its pieces and what it shows.
- ``bridge.py``: engine events (worker threads) into the GUI thread; ``theme.py``: colours, type, style.
"""
