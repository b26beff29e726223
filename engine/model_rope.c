// engine/model_rope.c — the rope inverse-frequency table of a loaded model (incl. scaling).
#include "model.h"

#include <math.h>

// HF computes inv_freq in float32 (base ** (2i/d)); we do the same so rope angles match.
int model_init_rope(struct e2h_model *m) {
    const e2h_config *c = &m->cfg;
    int half = c->head_dim / 2;
    m->inv_freq = model_alloc(m, (size_t)half * sizeof(float));
    if (!m->inv_freq) return -1;
    for (int i = 0; i < half; i++) {
        float expo = (float)(2 * i) / (float)c->head_dim;
        float f = 1.0f / powf(c->rope_theta, expo);
        if (c->rope_scaling == E2H_ROPE_LINEAR) f /= c->rope_factor;
        if (c->rope_scaling == E2H_ROPE_LLAMA3) {
            float old = (float)c->rope_orig_max_pos;
            float low_wl = old / c->rope_low_freq_factor, high_wl = old / c->rope_high_freq_factor;
            float wl = 2.0f * (float)M_PI / f;
            float scaled = wl > low_wl ? f / c->rope_factor : f;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                float smooth = (old / wl - c->rope_low_freq_factor) /
                               (c->rope_high_freq_factor - c->rope_low_freq_factor);
                scaled = (1.0f - smooth) * scaled / c->rope_factor + smooth * scaled;
            }
            f = scaled;
        }
        m->inv_freq[i] = f;
    }
    return 0;
}
