// A minimal Verilator driver loop for mintaccel_top (preloaded build): the fair fastest RTL baseline.
// Verilator escapes "__" in port names as "___05F".
// Usage: driver INPUT.bin SAMPLES WORDS_PER_SAMPLE OUTPUT.txt
// INPUT.bin: uint32 input spike words, SAMPLES x WORDS_PER_SAMPLE. OUTPUT.txt: per sample a line
// "sample S cycles C stalls X", then one line per FIRE "trace HEX" and per output word "out HEX".
// The last line is "wall_seconds W total_cycles N" for the simulation loop alone.
#include "Vmintaccel_top.h"
#include "verilated.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char **argv) {
    if (argc != 5) { std::fprintf(stderr, "usage: driver INPUT.bin SAMPLES WORDS OUTPUT.txt\n"); return 2; }
    const long samples = std::atol(argv[2]), words = std::atol(argv[3]);
    std::vector<uint32_t> input(samples * words);
    FILE *in = std::fopen(argv[1], "rb");
    if (!in || std::fread(input.data(), 4, input.size(), in) != input.size()) { std::perror("input"); return 2; }
    std::fclose(in);
    FILE *out = std::fopen(argv[4], "w");
    Vmintaccel_top *top = new Vmintaccel_top;
    auto edge = [&]() { top->clk = 0; top->eval(); top->clk = 1; top->eval(); };
    top->rst = 1; edge(); top->rst = 0; edge();
    // Records are kept in memory and written after the timed loop: (sample, kind, value).
    struct Rec { long sample; char kind; uint64_t value; };
    std::vector<Rec> recs;
    recs.reserve(1 << 20);
    std::vector<unsigned> cycles(samples), stalls(samples);
    long long total = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long s = 0; s < samples; s++) {
        const uint32_t *w = &input[s * words];
        top->start = 1; edge(); top->start = 0;
        long k = 0;
        for (;;) {
            top->spikes_in___05Fvalid = k < words;
            top->spikes_in___05Fpayload = w[k < words ? k : words - 1];
            top->spikes_out___05Fready = 1;
            top->clk = 0; top->eval();
            const bool accepted = top->spikes_in___05Fvalid && top->spikes_in___05Fready;
            if (top->probe & 1) recs.push_back(Rec{s, 't', static_cast<uint64_t>(top->probe)});
            if (top->spikes_out___05Fvalid) recs.push_back(Rec{s, 'o', static_cast<uint64_t>(top->spikes_out___05Fpayload)});
            const bool done = top->done;
            top->clk = 1; top->eval();
            if (accepted) k++;
            if (done) break;
        }
        total += top->cycles;
        cycles[s] = top->cycles;
        stalls[s] = top->stall_cycles;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t r = 0;
    for (long s = 0; s < samples; s++) {
        std::fprintf(out, "sample %ld cycles %u stalls %u\n", s, cycles[s], stalls[s]);
        for (; r < recs.size() && recs[r].sample == s; r++)
            std::fprintf(out, "%s %llx\n", recs[r].kind == 't' ? "trace" : "out", (unsigned long long)recs[r].value);
    }
    std::fprintf(out, "wall_seconds %.6f total_cycles %lld\n", secs, total);
    std::fclose(out);
    top->final();
    delete top;
    return 0;
}
