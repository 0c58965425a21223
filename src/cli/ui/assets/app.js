// placeholder: the viewer script lands with the page work
