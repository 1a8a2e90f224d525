"""The local API: JSON-RPC 2.0 over a loopback WebSocket, the SDK, the diagnostics page (docs/api.md).

Modules, one concern each: `jsonrpc` (sans-IO framing), `security` (Host/Origin/token decisions),
`pairing` (approved origins and 6-digit pairing requests), `token` (the local token file),
`methods` (handler base class and registry), `handlers_core` / `handlers_cards` (the methods),
`openrpc` (the document from the same schemas), `connection` (per-connection state and dispatch),
`server` (aiohttp routes and lifecycle), `ports` (who holds a port), `client` (local client for the
CLI and tests), `static/` (SDK, types, diagnostics page).
"""
