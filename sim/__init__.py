"""The test bench the product does not ship: simulated time, fault injection, the chaos soak's
referee. Tests and benchmarks import it; chatbot/, handlers/ and trading/ never do."""
