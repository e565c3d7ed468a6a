"""ttpgraph core: settings, the Graph wrapper, the Cypher catalog, services and domain errors."""

from .lazy import hide_dataframes_from_driver

hide_dataframes_from_driver()
