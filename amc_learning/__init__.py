"""The app shell: settings, embedded infrastructure, the run orchestration and the CLI."""
