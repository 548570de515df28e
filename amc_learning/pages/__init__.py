"""What the engine shows people: the intelligence report page (`report`), its SVG charts
(`charts`) and templates. Presentation only: it reads nothing and judges nothing."""
