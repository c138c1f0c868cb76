// Reads a Parquet file with DuckDB (a reader nobody here wrote) and prints
// {"rows": [...], "metadata": {...}, "columns": [...]} as JSON.
//   node read_parquet.js FILE
const path = require('node:path')
const { DuckDBInstance } = require(path.join(process.env.EVOLIVE_NODE_MODULES || 'node_modules', '@duckdb/node-api'))

;(async () => {
  const file = process.argv[2]
  const db = await DuckDBInstance.create(':memory:')
  const c = await db.connect()
  const rows = (await c.runAndReadAll(`select * from read_parquet('${file.replaceAll("'", "''")}')`)).getRowObjectsJson()
  const kv = (await c.runAndReadAll(
    `select decode(key) as key, decode(value) as value from parquet_kv_metadata('${file.replaceAll("'", "''")}')`)).getRowObjectsJson()
  const schema = (await c.runAndReadAll(
    `select name, type from parquet_schema('${file.replaceAll("'", "''")}')`)).getRowObjectsJson()
  const metadata = Object.fromEntries(kv.map((r) => [r.key, r.value]))
  console.log(JSON.stringify({ rows, metadata, columns: schema }))
})().catch((e) => {
  console.error(String(e))
  process.exit(1)
})
