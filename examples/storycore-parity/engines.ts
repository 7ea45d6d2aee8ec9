/**
 * The integration examples of the StoryCore-Engine error-handling guide (StoryCore-Engine's "Error
 * Handling Implementation Guide"), rewritten with this library. Each block
 * names the Python it replaces. The engines are stand-ins you would replace
 * with your own clients. Run: node examples/storycore-parity/engines.ts
 */
import { createResilience } from "@storycore/resilient-fetch";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { fallback } from "@storycore/resilient-fetch/fallback";
import type { GenerationParams } from "@storycore/resilient-fetch/policies";

// system = ErrorHandlingSystem(): retries and breakers, plus the guide's
// fallback chains and five degradation levels (opt-in entries; no HTTP
// chains configured here, the chains below wrap engines, not URLs).
const system = createResilience({
  retry: { maxAttempts: 3, initialDelay: 50 },
  fallback: fallback([]),
  degradation: degradation(),
});

/** Stand-in engines: the premium one fails now and then, the others answer. */
let hunyuanCalls = 0;
const hunyuan = {
  generate: async (r: GenerationParams) =>
    ++hunyuanCalls % 3 === 0 ? { engine: "hunyuan", ...r } : Promise.reject(new Error("GPU busy")),
};
const wan = { generate: async (r: GenerationParams) => ({ engine: "wan", ...r }) };
const cachedVideo = async (r: GenerationParams) => ({ engine: "cache", prompt: r.prompt });

// --- Video Engine Integration -------------------------------------------
class ResilientVideoEngine {
  // self.hunyuan_cb = system.get_circuit_breaker('hunyuan_video')
  readonly hunyuanBreaker = system.breaker("hunyuan_video");
  readonly wanBreaker = system.breaker("wan_video");
  // self.fallback_chain = system.get_fallback_chain('video_generation'); add_fallback(…)
  readonly chain = system.fallback
    .chain<GenerationParams, object>("video_generation")
    .add((r) => this.hunyuanBreaker.execute(() => hunyuan.generate(r)), { name: "hunyuan_premium", expectedQuality: 1 })
    .add((r) => this.wanBreaker.execute(() => wan.generate(r)), { name: "wan_standard", expectedQuality: 0.8 })
    .add((r) => cachedVideo(r), { name: "cached_fallback", expectedQuality: 0.4 });

  generateVideo(request: GenerationParams): Promise<object> {
    // adjusted_request = system.graceful_degradation.adjust_parameters(request)
    const adjusted = system.degradation.adjust(request);
    // system.execute_with_resilience(self.fallback_chain.execute, adjusted_request,
    //     circuit_breaker_name='video_generation', enable_retry=True)
    return system.execute(() => this.chain.execute(adjusted), { breaker: "video_generation" });
  }
}

// --- Image Engine Integration -------------------------------------------
const qwen = { generate: async (r: GenerationParams) => ({ engine: "qwen", ...r }) };
const flux = { generate: async (r: GenerationParams) => ({ engine: "flux", ...r }) };
const newbie = { generate: async (r: GenerationParams) => ({ engine: "newbie", ...r }) };

class ResilientImageEngine {
  // self.qwen_cb = system.get_circuit_breaker('qwen_image') (and flux_cb, newbie_cb);
  // self.quality_chain = system.get_fallback_chain('image_quality'); add_fallback(self._generate_qwen, name='qwen_ultra') …
  readonly chain = system.fallback
    .chain<GenerationParams, object>("image_quality")
    .add((r) => system.breaker("qwen_image").execute(() => qwen.generate(r)), {
      name: "qwen_ultra",
      expectedQuality: 1,
    })
    .add((r) => system.breaker("flux_image").execute(() => flux.generate(r)), {
      name: "flux_high",
      expectedQuality: 0.8,
    })
    .add((r) => system.breaker("newbie_image").execute(() => newbie.generate(r)), {
      name: "newbie_standard",
      expectedQuality: 0.6,
    });

  generateImage(request: GenerationParams): Promise<object> {
    // adjusted_request = system.graceful_degradation.adjust_parameters(request)
    // system.execute_with_resilience(self.quality_chain.execute, adjusted_request, enable_retry=True)
    return system.execute(() => this.chain.execute(system.degradation.adjust(request)));
  }
}

// --- Workflow System Integration ----------------------------------------
interface WorkflowConfig {
  generation: GenerationParams;
  processing: { enhance: boolean; validate: boolean };
  output: GenerationParams & { format: string };
}

class ResilientWorkflowSystem {
  // self.generation_chain = system.get_fallback_chain('content_generation') (and processing_chain, output_chain)
  readonly generation = system.fallback
    .chain<GenerationParams, string>("content_generation")
    .add(async (c) => `story(${c.length})`, { name: "llm" });
  readonly processing = system.fallback
    .chain<{ content: string; processing: WorkflowConfig["processing"] }, string>("content_processing")
    .add(async ({ content }) => `${content}+enhanced`, { name: "enhancer" })
    .add(async ({ content }) => content, { name: "passthrough", expectedQuality: 0.5 });
  readonly output = system.fallback
    .chain<{ processed: string; output: WorkflowConfig["output"] }, string>("output_generation")
    .add(async ({ processed, output }) => `${output.format}:${processed}@${output.resolution}`, { name: "renderer" });

  executeWorkflow(config: WorkflowConfig): Promise<string> {
    // adjusted_config = system.graceful_degradation.adjust_parameters(workflow_config): here each
    // phase's parameters go through the current degradation level.
    const adjusted = {
      generation: system.degradation.adjust(config.generation),
      processing: config.processing,
      output: system.degradation.adjust(config.output) as WorkflowConfig["output"],
    };
    // system.execute_with_resilience(execute_with_resilience, circuit_breaker_name='workflow_execution', enable_retry=True)
    return system.execute(
      async () => {
        const content = await this.generation.execute(adjusted.generation);
        const processed = await this.processing.execute({ content, processing: adjusted.processing });
        return this.output.execute({ processed, output: adjusted.output });
      },
      { breaker: "workflow_execution" },
    );
  }
}

// Usage, as in the StoryCore-Engine error-handling guide.
const video = await new ResilientVideoEngine().generateVideo({ prompt: "A story scene", duration: 10, quality: 1.0 });
const image = await new ResilientImageEngine().generateImage({
  prompt: "A beautiful landscape",
  style: "realistic",
  resolution: "1024x1024",
});
system.degradation.setLevel("medium", "demo: high load");
const result = await new ResilientWorkflowSystem().executeWorkflow({
  generation: { type: "story", length: "medium" },
  processing: { enhance: true, validate: true },
  output: { format: "video", quality: 1.0, resolution: "1080p" },
});
console.log({ video, image, result });
// get_statistics() / get_system_health()
console.log(system.fallback.chain("video_generation").statistics());
console.log(Object.keys(system.health().breakers));
