"""napari plugin for backmice (npe2 manifest ``backmice``). Widgets come with the plugin issue."""

__all__: list[str] = []
