import { defineCorsSuite } from "./cors-cases.ts";

defineCorsSuite("node");
