"""Local stand-ins for Google, Apple and Facebook (federation.md §8), served through
`httpx.MockTransport`: nothing here reaches the network."""
