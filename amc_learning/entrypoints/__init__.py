"""The shell: the composition root (`bootstrap`), the main job (`run`, with its process
supervision `supervise` and the paced learner `pacing`), the simulated producers
(`feeds`), the embedded infrastructure (`infra`), `status`, `experiment`, progress bars."""
