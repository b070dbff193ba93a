// This package's version, as its package.json says (a unit test keeps the two equal): shown in the node registry.

export const VERSION = '0.1.0';
