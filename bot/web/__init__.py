"""The website chat widget (static files) and a demo clinic site to try it on."""
