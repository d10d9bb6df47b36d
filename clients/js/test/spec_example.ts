// The TypeScript SDK example of the API spec (../shared/spec/browser-llm-api.md, "SDK
// Examples", "JavaScript/TypeScript SDK"), copied verbatim up to its "// Usage" part
// (spec_example.test.ts runs the usage against a real server). The only addition is this
// header and the import of the types the example names, from the SDK's own declarations.
import type { GenerateRequest, GenerateResponse, ModelsResponse, StatusResponse } from "../src/types.js";

// browser-llm-client.ts

export class BrowserLLMClient {
  private baseURL: string;
  
  constructor(baseURL: string = 'http://localhost:3000/api/v1') {
    this.baseURL = baseURL;
  }
  
  async generate(params: GenerateRequest): Promise<GenerateResponse> {
    const response = await fetch(`${this.baseURL}/generate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(params)
    });
    
    const result = await response.json();
    
    if (!result.success) {
      throw new Error(result.error.message);
    }
    
    return result.data;
  }
  
  async *generateStream(params: GenerateRequest): AsyncGenerator<string> {
    const response = await fetch(`${this.baseURL}/generate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...params, stream: true })
    });
    
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      
      const chunk = decoder.decode(value);
      const lines = chunk.split('\n');
      
      for (const line of lines) {
        if (line.startsWith('data: ')) {
          const data = JSON.parse(line.slice(6));
          if (data.type === 'token') {
            yield data.data.token;
          }
        }
      }
    }
  }
  
  async getModels(): Promise<ModelsResponse> {
    const response = await fetch(`${this.baseURL}/models`);
    const result = await response.json();
    return result.data;
  }
  
  async getStatus(): Promise<StatusResponse> {
    const response = await fetch(`${this.baseURL}/status`);
    const result = await response.json();
    return result.data;
  }
}
