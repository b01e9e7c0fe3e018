"""The HTTP surfaces: pages for people, the widget API, health. Handlers only call services."""
