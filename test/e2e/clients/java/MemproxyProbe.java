// One chat completion through the openai-java SDK, configured only from the environment (OPENAI_BASE_URL,
// OPENAI_API_KEY), with the sync client (OpenAIClientImpl) or the async one (OpenAIClientAsyncImpl); prints the answer.
// Usage: java -cp "classes:lib/*" MemproxyProbe sync|async|sync-stream PROMPT
import com.openai.client.OpenAIClient;
import com.openai.client.OpenAIClientAsync;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.client.okhttp.OpenAIOkHttpClientAsync;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;

public final class MemproxyProbe {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: MemproxyProbe sync|async|sync-stream PROMPT");
            System.exit(2);
        }
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
                .model("gpt-4o")
                .addUserMessage(args[1])
                .build();
        switch (args[0]) {
            case "sync": {
                OpenAIClient client = OpenAIOkHttpClient.fromEnv();
                try {
                    print(client.chat().completions().create(params));
                } finally {
                    client.close();
                }
                break;
            }
            case "sync-stream": {
                OpenAIClient client = OpenAIOkHttpClient.fromEnv();
                StringBuilder out = new StringBuilder();
                try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
                    stream.stream().forEach(chunk -> chunk.choices().forEach(c -> c.delta().content().ifPresent(out::append)));
                } finally {
                    client.close();
                }
                System.out.println(out);
                break;
            }
            case "async": {
                OpenAIClientAsync client = OpenAIOkHttpClientAsync.fromEnv();
                try {
                    print(client.chat().completions().create(params).get());
                } finally {
                    client.close();
                }
                break;
            }
            default:
                System.err.println("unknown mode " + args[0]);
                System.exit(2);
        }
    }

    private static void print(ChatCompletion completion) {
        completion.choices().forEach(c -> c.message().content().ifPresent(System.out::println));
    }
}
