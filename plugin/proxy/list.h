// An intrusive doubly linked list: an object is in at most one list at a time through the
// ListHook it derives from. Used for the idle and connect-timeout orders, where moving an
// object to the tail on every event must cost nothing but four pointer writes.
#pragma once

#include <cstddef>

namespace plumb::proxy {

class HookList;

class ListHook {
 public:
  ListHook() = default;
  ListHook(const ListHook&) = delete;
  ListHook& operator=(const ListHook&) = delete;
  bool linked() const { return owner_ != nullptr; }

 private:
  friend class HookList;
  ListHook* prev_ = nullptr;
  ListHook* next_ = nullptr;
  HookList* owner_ = nullptr;  // the list it is in: moving it to another keeps both counts right
};

class HookList {
 public:
  HookList() {
    head_.prev_ = head_.next_ = &head_;
    head_.owner_ = this;
  }
  HookList(const HookList&) = delete;
  HookList& operator=(const HookList&) = delete;

  void pushBack(ListHook* h) {
    if (h->owner_) h->owner_->unlink(h);
    h->owner_ = this;
    h->prev_ = head_.prev_;
    h->next_ = &head_;
    head_.prev_->next_ = h;
    head_.prev_ = h;
    ++size_;
  }
  void remove(ListHook* h) {
    if (h->owner_ == this) unlink(h);
  }
  ListHook* front() const { return head_.next_ == &head_ ? nullptr : head_.next_; }
  ListHook* next(const ListHook* h) const { return h->next_ == &head_ ? nullptr : h->next_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void unlink(ListHook* h) {
    h->prev_->next_ = h->next_;
    h->next_->prev_ = h->prev_;
    h->prev_ = h->next_ = nullptr;
    h->owner_ = nullptr;
    --size_;
  }
  ListHook head_;
  size_t size_ = 0;
};

}  // namespace plumb::proxy
