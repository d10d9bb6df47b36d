# The Python SDK example of the API spec (../shared/spec/browser-llm-api.md, "SDK Examples",
# "Python SDK"), copied verbatim up to its "# Usage" part (tests/e2e/test_spec_examples.py
# runs the usage against a test server). One line is added: the spec's example calls
# json.loads without importing json (marked below). Not linted or formatted (pyproject.toml).
# browser_llm_client.py

import json  # added: the spec's example uses json.loads without importing it
import requests
from typing import Iterator, Optional
import sseclient

class BrowserLLMClient:
    def __init__(self, base_url: str = 'http://localhost:3000/api/v1'):
        self.base_url = base_url
    
    def generate(
        self,
        prompt: str,
        max_tokens: int = 512,
        temperature: float = 0.7,
        **kwargs
    ) -> dict:
        response = requests.post(
            f'{self.base_url}/generate',
            json={
                'prompt': prompt,
                'max_tokens': max_tokens,
                'temperature': temperature,
                **kwargs
            }
        )
        
        result = response.json()
        
        if not result['success']:
            raise Exception(result['error']['message'])
        
        return result['data']
    
    def generate_stream(
        self,
        prompt: str,
        max_tokens: int = 512,
        **kwargs
    ) -> Iterator[str]:
        response = requests.post(
            f'{self.base_url}/generate',
            json={
                'prompt': prompt,
                'max_tokens': max_tokens,
                'stream': True,
                **kwargs
            },
            stream=True
        )
        
        client = sseclient.SSEClient(response)
        
        for event in client.events():
            data = json.loads(event.data)
            if data['type'] == 'token':
                yield data['data']['token']
            elif data['type'] == 'done':
                break
    
    def get_models(self) -> dict:
        response = requests.get(f'{self.base_url}/models')
        return response.json()['data']
    
    def get_status(self) -> dict:
        response = requests.get(f'{self.base_url}/status')
        return response.json()['data']

