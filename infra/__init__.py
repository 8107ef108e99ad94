"""Local AWS stack: moto's server with template.yaml deployed into it and its event sources routed to the handlers."""
