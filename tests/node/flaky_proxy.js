// An HTTP proxy for fault tests: answers the first FAILURES requests with
// 500, then forwards everything to 127.0.0.1:TARGET_PORT unchanged
// (headers included, so SigV4 signatures still hold).
//   node flaky_proxy.js TARGET_PORT FAILURES
// Prints `listening PORT` on stderr once ready.
const http = require('node:http')

const [targetPort, failures] = process.argv.slice(2).map(Number)
let seen = 0
const server = http.createServer((req, res) => {
  if (seen++ < failures) {
    req.resume()
    res.writeHead(500, { 'Content-Type': 'application/xml' })
    res.end('<Error><Code>InternalError</Code><Message>injected failure</Message></Error>')
    return
  }
  const upstream = http.request(
    { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
    (up) => {
      res.writeHead(up.statusCode, up.headers)
      up.pipe(res)
    },
  )
  upstream.on('error', () => {
    res.writeHead(502)
    res.end()
  })
  req.pipe(upstream)
})
server.listen(0, '127.0.0.1', () => console.error(`listening ${server.address().port}`))
