// Starts @20minutes/s3rver (which checks SigV4 signatures) for a test:
//   node --openssl-legacy-provider s3rver.js DIRECTORY BUCKET...
// Listens on a free loopback port and prints `listening PORT` on stderr once ready.
// Credentials: access key S3RVER, secret S3RVER.
const path = require('node:path')
const S3rver = require(path.join(process.env.EVOLIVE_NODE_MODULES || 'node_modules', '@20minutes/s3rver'))

const [directory, ...buckets] = process.argv.slice(2)
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
})
server.run().then((address) => {
  const port = address.port ?? server.httpServer.address().port
  console.error(`listening ${port}`)
})
process.on('SIGTERM', () => server.close().then(() => process.exit(0)))
