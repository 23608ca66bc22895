"""Where Varta's files are and how any node reads them: segments, event pictures, exports
and packages live on the disk of the node that wrote them and are read through it over
HTTP from any other node (object storage joins here as another backend)."""
