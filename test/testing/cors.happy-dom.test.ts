// @vitest-environment happy-dom
import { defineCorsSuite } from "./cors-cases.ts";

defineCorsSuite("happy-dom");
