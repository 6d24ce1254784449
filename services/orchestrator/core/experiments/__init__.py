"""Online A/B experiments: declared in TOML (:mod:`.config`), assigned per caller
(:mod:`.assignment`), recorded per query (:mod:`.records`), analysed (:mod:`.analysis`),
charted (:mod:`.chart`) and exported to Prometheus (:mod:`.metrics`). Plain Python, no
protobuf: the orchestrator's transports map these dataclasses to the contract.
"""
