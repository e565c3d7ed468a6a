// name: inventory_info
// doc: One inventory record: format, source, when, the import summary (JSON) the ATT&CK releases it was resolved against and the crosswalk pairs used.
// params: inventory
// example: {"inventory": "example"}
MATCH (i:Inventory {name: $inventory})
RETURN i.name AS name, i.format AS format, i.source AS source, i.imported_at AS imported_at,
       i.rules AS rules, i.mapped AS mapped, i.techniques_covered AS techniques_covered,
       i.releases AS releases, i.options AS options, i.summary AS summary,
       i.crosswalk AS crosswalk
