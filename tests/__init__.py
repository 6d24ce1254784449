"""ragmesh test suite: unit/ (one piece, fakes allowed), integration/ (real servers, real models)."""
