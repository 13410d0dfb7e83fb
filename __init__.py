"""ipledger: an event-sourced transaction ledger for intellectual-property trading.

Installed as one distribution namespace (`ipledger.domain`, `ipledger.ledger`,
`ipledger.projections`, `ipledger.cli`), so it claims no bare top-level names such as
`domain` in site-packages. The folders stay at the top of the repository.
"""
