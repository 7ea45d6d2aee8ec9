// @vitest-environment node
import { defineUserTests } from "./cases.ts";

defineUserTests("node");
