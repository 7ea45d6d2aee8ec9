// @vitest-environment happy-dom
import { defineUserTests } from "./cases.ts";

defineUserTests("happy-dom");
